// A store in a folder several users share (issue 13, finding 4): another user reading it must
// leave nothing beside it that stops its owner writing, even while that reader keeps it open,
// teammates who share it through its group both write it, and an export there leaves one file. The test plays the users from forked
// children that setuid (so it needs root, as CI runs it); uids and gids need no passwd entries.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "cache/transfer.hpp"
#include "cache_fixtures.hpp"
#include "child_process.hpp"

using namespace glqjit;
using namespace glqjit::test;

namespace {

namespace fs = std::filesystem;

const TestUser kOwner{1001, 1001, {}};
const TestUser kReader{1002, 1002, {}};
constexpr gid_t kTeam = 3000;
const TestUser kTeamOwner{1001, 1001, {kTeam}};
const TestUser kTeammate{1002, 1002, {kTeam}};

bool can_play_users() {
  if (::geteuid() == 0) return true;
  WARN("skipped: playing two users needs root (fork, then setuid in the child)");
  return false;
}

// A sticky folder everyone may write, like /tmp or a team's scratch space, inside dir.
std::string shared_folder(const TempDir& dir) {
  fs::permissions(dir.path(), fs::perms(0755));
  const fs::path folder = dir.path() / "shared";
  fs::create_directory(folder);
  fs::permissions(folder, fs::perms(01777));
  return folder.string();
}

// The names in folder that belong to uid.
std::vector<std::string> files_of(const std::string& folder, uid_t uid) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) {
    struct stat status {};
    if (::lstat(entry.path().c_str(), &status) == 0 && status.st_uid == uid) {
      names.push_back(entry.path().filename().string());
    }
  }
  return names;
}

// A child's steps: a Store that must be writable (or must not), a kernel it puts or must find.
int open_and_put(const std::string& path, const std::string& name) {
  Store store(StoreOptions{path, false});
  if (store.read_only()) {
    std::fprintf(stderr, "uid %u: %s opened read-only\n", ::geteuid(), path.c_str());
    return 2;
  }
  store.put_kernel(sample_kernel(name));
  return store.find_kernel(sample_kernel(name).key_digest) ? 0 : 3;
}

int finds(Store& store, const std::string& name) {
  if (store.find_kernel(sample_kernel(name).key_digest)) return 0;
  std::fprintf(stderr, "uid %u: kernel %s is not in %s\n", ::geteuid(), name.c_str(), store.path().c_str());
  return 4;
}

// A pipe on which a child says it is ready and then waits for the parent's go.
struct Handshake {
  int ready[2] = {-1, -1};
  int go[2] = {-1, -1};
  Handshake() {
    if (::pipe(ready) != 0 || ::pipe(go) != 0) throw std::runtime_error("pipe failed");
  }
  ~Handshake() {
    for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
  }
  void child_ready_then_wait() const {
    char byte = 'r';
    (void)::write(ready[1], &byte, 1);
    (void)::read(go[0], &byte, 1);
  }
  bool parent_waits_ready() const {
    char byte = 0;
    return ::read(ready[0], &byte, 1) == 1;
  }
  void parent_says_go() const {
    const char byte = 'g';
    (void)::write(go[1], &byte, 1);
  }
};

}  // namespace

TEST_CASE("store: another user's reads leave nothing beside the store that stops its owner writing",
          "[cache][store][shared]") {
  if (!can_play_users()) return;
  TempDir dir;
  const std::string folder = shared_folder(dir);
  const std::string path = folder + "/glqjit.db";
  REQUIRE(as_user(kOwner, [&] { return open_and_put(path, "first"); }) == 0);

  // Both ways in: the default writable open (which falls back to read-only) and read_only.
  const auto read_as_reader = [&] {
    for (const bool read_only : {false, true}) {
      Store store(StoreOptions{path, read_only});
      if (!store.read_only()) return 2;
      if (const int failed = finds(store, "first")) return failed;
    }
    return 0;
  };
  REQUIRE(as_user(kReader, read_as_reader) == 0);
  CHECK(files_of(folder, kReader.uid).empty());
  REQUIRE(as_user(kOwner, [&] { return open_and_put(path, "second"); }) == 0);

  SECTION("while the reader keeps it open, the owner writes and the reader sees it") {
    Handshake handshake;
    const pid_t reader = fork_as_user(kReader, [&] {
      Store store(StoreOptions{path, true});
      if (const int failed = finds(store, "second")) return failed;
      handshake.child_ready_then_wait();
      return finds(store, "third");
    });
    REQUIRE(handshake.parent_waits_ready());
    CHECK(as_user(kOwner, [&] { return open_and_put(path, "third"); }) == 0);
    handshake.parent_says_go();
    CHECK(exit_code(reader) == 0);
    CHECK(files_of(folder, kReader.uid).empty());
  }

  SECTION("without the owner's -wal and -shm (an older glqjit removed them), the reader creates none") {
    fs::remove(path + "-wal");
    fs::remove(path + "-shm");
    REQUIRE(as_user(kReader, read_as_reader) == 0);
    CHECK(files_of(folder, kReader.uid).empty());
    CHECK(as_user(kOwner, [&] { return open_and_put(path, "third"); }) == 0);
  }

  SECTION("another user's -wal and -shm left by an older reader make the owner read-only, saying what to do") {
    for (const char* suffix : {"-wal", "-shm"}) {
      fs::remove(path + suffix);
      std::ofstream(path + suffix).close();
      REQUIRE(::chown((path + suffix).c_str(), kReader.uid, kReader.gid) == 0);
      REQUIRE(::chmod((path + suffix).c_str(), 0644) == 0);
    }
    const std::string log = folder + "/owner.log";  // the owner may write only there
    CHECK(as_user(kOwner, [&] {
            StderrCapture capture(log);
            Store store(StoreOptions{path, false});
            const bool read_only = store.read_only();
            const bool found = store.find_kernel(sample_kernel("second").key_digest).has_value();
            capture.finish();
            return read_only && found ? 0 : 5;
          }) == 0);
    const std::string warning = read_bytes(log);
    INFO("owner's stderr: " << warning);
    CHECK_THAT(warning, Catch::Contains("owner uid 1002"));
    CHECK_THAT(warning, Catch::Contains("delete " + path + "-wal and " + path + "-shm"));
  }
}

TEST_CASE("store: teammates who share a store through its group write it while the other has it open",
          "[cache][store][shared]") {
  if (!can_play_users()) return;
  TempDir dir;
  const std::string folder = shared_folder(dir);
  const std::string path = folder + "/team.db";
  REQUIRE(as_user(kTeamOwner, [&] { return open_and_put(path, "first"); }) == 0);
  // What a team does to share it: the store into the team's group, writable by the group.
  REQUIRE(::chown(path.c_str(), kTeamOwner.uid, kTeam) == 0);
  REQUIRE(::chmod(path.c_str(), 0664) == 0);
  REQUIRE(as_user(kTeamOwner, [&] { return open_and_put(path, "second"); }) == 0);
  for (const char* suffix : {"-wal", "-shm"}) {
    INFO(suffix);
    struct stat status {};
    REQUIRE(::stat((path + suffix).c_str(), &status) == 0);  // kept: a shared folder
    CHECK(status.st_gid == kTeam);
    CHECK((status.st_mode & 0777) == 0664);
  }

  Handshake handshake;
  const pid_t teammate = fork_as_user(kTeammate, [&] {
    Store store(StoreOptions{path, false});
    if (store.read_only()) return 2;
    store.put_kernel(sample_kernel("from the teammate"));
    handshake.child_ready_then_wait();
    if (const int failed = finds(store, "from the owner")) return failed;
    store.put_kernel(sample_kernel("from the teammate, later"));
    return finds(store, "from the teammate, later");
  });
  REQUIRE(handshake.parent_waits_ready());
  CHECK(as_user(kTeamOwner, [&] { return open_and_put(path, "from the owner"); }) == 0);
  handshake.parent_says_go();
  CHECK(exit_code(teammate) == 0);
  CHECK(as_user(kTeamOwner, [&] {
          Store store(StoreOptions{path, false});
          return finds(store, "from the teammate, later");
        }) == 0);
  CHECK(sqlite_scalar(path, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("store: an export into a shared folder leaves only the exported file", "[cache][store][shared]") {
  TempDir dir;
  const std::string folder = shared_folder(dir);
  Store from(StoreOptions{folder + "/from.db", false});
  from.put_kernel(sample_kernel("shipped"));
  const std::string to = dir.file("shared/ship/to.db");
  fs::create_directory(dir.file("shared/ship"));
  fs::permissions(dir.file("shared/ship"), fs::perms(01777));
  CHECK(export_store(from, to, {}).kernels == 1);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.file("shared/ship"))) names.push_back(entry.path().filename());
  CHECK(names == std::vector<std::string>{"to.db"});  // its kept -wal and -shm went with the temporary name
}
