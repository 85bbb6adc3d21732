// glq-tune --devices' command lines (tools/tune_workers.hpp): the device list, and what each
// worker is started with.
#include <catch2/catch.hpp>

#include "tools/tune_workers.hpp"

namespace glqjit {

TEST_CASE("the list of --devices takes decimal ordinals, repeats allowed, and refuses anything else", "[tools][devices]") {
  std::string why;
  CHECK(parse_device_list("0", why) == std::vector<int>{0});
  CHECK(parse_device_list("0,1,2,3", why) == std::vector<int>{0, 1, 2, 3});
  CHECK(parse_device_list("0,0", why) == std::vector<int>{0, 0});  // two workers on one GPU
  CHECK(parse_device_list("007,1023", why) == std::vector<int>{7, 1023});
  for (const char* bad : {"", ",", "0,", ",1", "1,,2", "-1", "1024", "0x1", "1 ", " 1", "a", "1;2", "99999999999"}) {
    INFO(bad);
    why.clear();
    CHECK_FALSE(parse_device_list(bad, why).has_value());
    CHECK(why.find("is not a CUDA device ordinal") != std::string::npos);
  }
}

TEST_CASE("a worker gets the command line without --devices and --json, plus its device", "[tools][devices]") {
  const std::vector<std::string> given = {"--model", "m.json", "--devices", "0,1", "--json=r.json", "--bpw", "2",
                                          "--json", "-", "--devices=2,3", "--cache", "s.db"};
  CHECK(worker_arguments(given, 1) == std::vector<std::string>{"--model", "m.json", "--bpw", "2", "--cache", "s.db",
                                                               "--device", "1", "--worker"});
  // An option that only starts like one of them stays.
  CHECK(worker_arguments({"--jsonx", "--devices-list"}, 0) ==
        std::vector<std::string>{"--jsonx", "--devices-list", "--device", "0", "--worker"});
}

}  // namespace glqjit
