// The -wal and -shm files sqlite keeps beside a WAL-mode store, when users share the store. sqlite
// creates them with the store's mode but owned by whoever opened the store first, and a connection
// that may only read leaves them behind when it closes: after another user had read a store in a
// shared folder, its owner could no longer write it ("attempt to write a readonly database"). So a
// writer keeps its own there (they stay after the last close, in the store's group), and a reader
// that may not write the store never creates them.
#pragma once

#include <optional>
#include <string>

struct sqlite3;

namespace glqjit {

// For a writable connection of path in WAL mode, after its first read. In a folder users other
// than its owner may write, its -wal and -shm outlive the last close (the -wal emptied), so that
// another user's reader finds them and creates none. Those this process owns get the store's group
// and mode, so whoever may write the store may write them.
void keep_side_files(sqlite3* db, const std::string& path);

// A -wal or -shm beside path that this process may not write, for a message: "PATH-shm (owner uid
// 1002, mode 0644)"; nullopt when there is none. A writer blocked by one can only read the store.
std::optional<std::string> unwritable_side_file(const std::string& path);

// Whether a connection to path would create a -wal or -shm that it leaves behind as this user:
// path is in WAL mode, this process may not write it, and one of them is missing.
bool reading_would_leave_side_files(const std::string& path);

// Gives a file this process owns beside the store the store's group and mode, and with
// writable_by_readers, write access for whoever may read the store (best effort: a user outside
// the store's group keeps its own group).
void share_like_store(int fd, const std::string& path, bool writable_by_readers);

}  // namespace glqjit
