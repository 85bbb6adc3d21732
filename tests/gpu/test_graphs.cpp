// Forwards inside CUDA graphs: captured replays, node-built graphs with pointer updates, and a
// forward that would have to compile during capture.
#include <catch2/catch.hpp>

#include "glqjit/error.hpp"
#include "gpu_support.hpp"
#include "runtime/graph.hpp"

namespace glqjit::test {
namespace {

// A stream that does not wait for the legacy stream, as serving stacks use them.
Stream test_stream() { return Stream(context().cu(), CU_STREAM_NON_BLOCKING); }

// A random layer on the device with its linear.
LinearOptions make_options(int max_batch, bool lazy) {
  LinearOptions options;
  options.max_batch = max_batch;
  options.lazy_buckets = lazy;
  return options;
}

struct DeviceLayer {
  QuantizedLayer layer;
  UploadedLayer uploaded;
  Linear linear;

  DeviceLayer(const LinearSpec& spec, int max_batch, std::mt19937_64& rng, bool lazy = false)
      : layer(random_layer(spec.in_features, spec.out_features, spec.bpw, rng())),
        uploaded(upload(layer, spec.dtype)),
        linear(context(), spec, uploaded.weights, make_options(max_batch, lazy)) {}
};

std::vector<uint16_t> read(const DeviceBuffer& buffer) {
  std::vector<uint16_t> bits(buffer.bytes() / 2);
  buffer.download(bits.data(), buffer.bytes());
  return bits;
}

}  // namespace

TEST_CASE("a captured sequence of three linears replays to the bits of eager calls", "[gpu][graph]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const int batch = 3;
  DeviceLayer a({4096, 4096, 2, DType::f16, false, false}, batch, rng);
  DeviceLayer b({4096, 1024, 3, DType::f16, false, false}, batch, rng);
  DeviceLayer c({1024, 2080, 4, DType::f16, false, false}, batch, rng);
  DeviceBuffer x = device_copy(random_activations(batch, 4096, DType::f16, rng).bits);
  DeviceBuffer ya = device_buffer(batch * 4096 * 2), yb = device_buffer(batch * 1024 * 2), yc = device_buffer(batch * 2080 * 2);
  Stream stream = test_stream();
  ScopedContext scope(context().cu());

  a.linear.forward(x.get(), ya.get(), batch, stream.get());
  b.linear.forward(ya.get(), yb.get(), batch, stream.get());
  c.linear.forward(yb.get(), yc.get(), batch, stream.get());
  stream.synchronize("the test's forwards");
  const std::vector<uint16_t> eager = read(yc);

  yc.poison();
  ya.poison();
  yb.poison();
  check_cuda(driver().cuStreamBeginCapture(stream.get(), CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "begin capture");
  a.linear.forward(x.get(), ya.get(), batch, stream.get());
  b.linear.forward(ya.get(), yb.get(), batch, stream.get());
  c.linear.forward(yb.get(), yc.get(), batch, stream.get());
  CUgraph graph = nullptr;
  check_cuda(driver().cuStreamEndCapture(stream.get(), &graph), "end capture");
  CUgraphExec exec = nullptr;
  check_cuda(driver().cuGraphInstantiateWithFlags(&exec, graph, 0), "instantiate");
  for (int replay = 0; replay < 2; ++replay) {
    yc.poison();
    check_cuda(driver().cuGraphLaunch(exec, stream.get()), "graph launch");
    stream.synchronize("the test's forwards");
    CHECK(read(yc) == eager);
  }
  driver().cuGraphExecDestroy(exec);
  driver().cuGraphDestroy(graph);
}

TEST_CASE("a forward graph replays and follows pointer updates without recapture", "[gpu][graph]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const int batch = 8;
  DeviceLayer a({2048, 11008, 2, DType::bf16, false, false}, batch, rng);
  DeviceLayer b({11008, 2048, 3, DType::bf16, false, false}, batch, rng);
  DeviceBuffer x1 = device_copy(random_activations(batch, 2048, DType::bf16, rng).bits);
  DeviceBuffer x2 = device_copy(random_activations(batch, 2048, DType::bf16, rng).bits);
  DeviceBuffer h = device_buffer(batch * 11008 * 2), y1 = device_buffer(batch * 2048 * 2), y2 = device_buffer(batch * 2048 * 2),
               expected = device_buffer(batch * 2048 * 2);
  Stream stream = test_stream();
  ScopedContext scope(context().cu());

  auto eager = [&](const DeviceBuffer& x) {
    a.linear.forward(x.get(), h.get(), batch, stream.get());
    b.linear.forward(h.get(), expected.get(), batch, stream.get());
    stream.synchronize("the test's forwards");
    return read(expected);
  };
  const std::vector<uint16_t> want1 = eager(x1), want2 = eager(x2);
  REQUIRE(want1 != want2);

  ForwardGraph graph(context());
  CHECK(graph.add_forward(a.linear, x1.get(), h.get(), batch) == 0);
  CHECK(graph.add_forward(b.linear, h.get(), y1.get(), batch) == 1);
  graph.instantiate();
  y1.poison();
  graph.launch(stream.get());
  stream.synchronize("the test's forwards");
  CHECK(read(y1) == want1);

  graph.set_io(0, x2.get(), h.get());
  graph.set_io(1, h.get(), y2.get());
  y1.poison();
  y2.poison();
  graph.launch(stream.get());
  stream.synchronize("the test's forwards");
  CHECK(read(y2) == want2);
  const std::vector<uint16_t> untouched = read(y1);
  CHECK(std::all_of(untouched.begin(), untouched.end(), [](uint16_t bits) { return bits == 0xffff; }));

  CHECK_THROWS_AS(graph.set_io(2, x1.get(), y1.get()), Error);
}

TEST_CASE("a forward that would compile during capture fails and leaves the capture intact", "[gpu][graph]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  DeviceLayer lazy({1536, 576, 2, DType::f16, false, false}, 64, rng, /*lazy=*/true);
  DeviceBuffer x = device_copy(random_activations(17, 1536, DType::f16, rng).bits);
  DeviceBuffer y = device_buffer(17 * 576 * 2);
  Stream stream = test_stream();
  ScopedContext scope(context().cu());

  check_cuda(driver().cuStreamBeginCapture(stream.get(), CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "begin capture");
  lazy.linear.forward(x.get(), y.get(), 1, stream.get());  // bucket 1 is compiled at plan
  try {
    lazy.linear.forward(x.get(), y.get(), 17, stream.get());
    FAIL("forward with an uncompiled bucket inside capture did not fail");
  } catch (const Error& error) {
    CHECK(error.status() == Status::capture_in_progress);
    CHECK_THAT(error.what(), Catch::Contains("capture"));
  }
  CUgraph graph = nullptr;
  CHECK(driver().cuStreamEndCapture(stream.get(), &graph) == CUDA_SUCCESS);
  REQUIRE(graph != nullptr);
  driver().cuGraphDestroy(graph);

  y.poison();
  lazy.linear.forward(x.get(), y.get(), 17, stream.get());  // outside capture it compiles and runs
  stream.synchronize("the test's forwards");
  const std::vector<uint16_t> out = read(y);
  CHECK(std::none_of(out.begin(), out.end(), [](uint16_t bits) { return (bits & 0x7c00) == 0x7c00; }));
}

}  // namespace glqjit::test
