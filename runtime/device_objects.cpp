#include "runtime/device_objects.hpp"

#include <fmt/format.h>

#include <utility>

#include "glqjit/error.hpp"
#include "runtime/driver.hpp"

namespace glqjit {

DeviceBuffer::DeviceBuffer(CUcontext context, size_t bytes, const std::string& what)
    : context_(context), bytes_(bytes), what_(what) {
  ScopedContext scope(context_);
  check_cuda(allocate_device_memory(&pointer_, std::max<size_t>(bytes, 16)),
             fmt::format("allocating {} bytes for {}", bytes, what));
}

DeviceBuffer::~DeviceBuffer() { reset(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : context_(other.context_),
      pointer_(std::exchange(other.pointer_, 0)),
      bytes_(std::exchange(other.bytes_, 0)),
      what_(std::move(other.what_)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    context_ = other.context_;
    pointer_ = std::exchange(other.pointer_, 0);
    bytes_ = std::exchange(other.bytes_, 0);
    what_ = std::move(other.what_);
  }
  return *this;
}

void DeviceBuffer::reset() {
  if (pointer_ == 0) return;
  try {
    ScopedContext scope(context_);
    driver().cuMemFree(pointer_);
  } catch (const Error&) {
    // The context is gone (driver shutdown); its memory went with it.
  }
  pointer_ = 0;
}

void DeviceBuffer::upload(const void* host, size_t bytes) const {
  ScopedContext scope(context_);
  check_cuda(driver().cuMemcpyHtoD(pointer_, host, bytes), "uploading " + what_);
}

void DeviceBuffer::download(void* host, size_t bytes) const {
  ScopedContext scope(context_);
  check_cuda(driver().cuStreamSynchronize(nullptr), "waiting for the work before downloading " + what_);
  check_cuda(driver().cuMemcpyDtoH(host, pointer_, bytes), "downloading " + what_);
}

void DeviceBuffer::poison() const {
  ScopedContext scope(context_);
  check_cuda(driver().cuMemsetD8(pointer_, 0xff, bytes_), "poisoning " + what_);
}

Stream::Stream(CUcontext context, unsigned flags) : context_(context) {
  ScopedContext scope(context_);
  check_cuda(driver().cuStreamCreate(&stream_, flags), "cuStreamCreate");
}

Stream::~Stream() {
  try {
    ScopedContext scope(context_);
    driver().cuStreamDestroy(stream_);
  } catch (const Error&) {
  }
}

void Stream::synchronize(const std::string& what) const {
  ScopedContext scope(context_);
  check_cuda(driver().cuStreamSynchronize(stream_), "waiting for " + what);
}

EventTimer::EventTimer(CUcontext context) : context_(context) {
  ScopedContext scope(context_);
  check_cuda(driver().cuEventCreate(&start_, CU_EVENT_DEFAULT), "cuEventCreate");
  check_cuda(driver().cuEventCreate(&stop_, CU_EVENT_DEFAULT), "cuEventCreate");
}

EventTimer::~EventTimer() {
  try {
    ScopedContext scope(context_);
    driver().cuEventDestroy(start_);
    driver().cuEventDestroy(stop_);
  } catch (const Error&) {
  }
}

void EventTimer::start(CUstream stream) {
  ScopedContext scope(context_);
  check_cuda(driver().cuEventRecord(start_, stream), "cuEventRecord");
}

double EventTimer::stop_ms(CUstream stream) {
  ScopedContext scope(context_);
  check_cuda(driver().cuEventRecord(stop_, stream), "cuEventRecord");
  check_cuda(driver().cuEventSynchronize(stop_), "waiting for a timed run");
  float ms = 0;
  check_cuda(driver().cuEventElapsedTime(&ms, start_, stop_), "cuEventElapsedTime");
  return double(ms);
}

CapturedGraph::CapturedGraph(CUcontext context, CUstream stream, const std::function<void()>& enqueue)
    : context_(context) {
  ScopedContext scope(context_);
  const Driver& d = driver();
  check_cuda(d.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
  try {
    enqueue();
  } catch (...) {
    CUgraph broken = nullptr;
    d.cuStreamEndCapture(stream, &broken);
    if (broken != nullptr) d.cuGraphDestroy(broken);
    throw;
  }
  check_cuda(d.cuStreamEndCapture(stream, &graph_),
             "cuStreamEndCapture (the capture was invalidated by a call that is not allowed in a graph)");
  const CUresult instantiated = d.cuGraphInstantiateWithFlags(&exec_, graph_, 0);
  if (instantiated != CUDA_SUCCESS) {
    d.cuGraphDestroy(graph_);
    check_cuda(instantiated, "cuGraphInstantiate");
  }
}

CapturedGraph::~CapturedGraph() {
  try {
    ScopedContext scope(context_);
    if (exec_ != nullptr) driver().cuGraphExecDestroy(exec_);
    if (graph_ != nullptr) driver().cuGraphDestroy(graph_);
  } catch (const Error&) {
  }
}

void CapturedGraph::launch(CUstream stream) const {
  ScopedContext scope(context_);
  check_cuda(driver().cuGraphLaunch(exec_, stream), "cuGraphLaunch");
}

}  // namespace glqjit
