// Owners of driver objects for the code that drives a GPU from the host side (the tuner, the
// tools, the GPU tests): device memory, streams, events and captured graphs. Each one makes its
// context current for its own calls, so its user need not.
#pragma once

#include <cuda.h>

#include <functional>
#include <string>
#include <vector>

namespace glqjit {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // Throws Error(cuda_error) naming `what` when the allocation fails.
  DeviceBuffer(CUcontext context, size_t bytes, const std::string& what);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  template <class T>
  static DeviceBuffer from(CUcontext context, const std::vector<T>& values, const std::string& what) {
    DeviceBuffer buffer(context, std::max<size_t>(values.size() * sizeof(T), 16), what);
    if (!values.empty()) buffer.upload(values.data(), values.size() * sizeof(T));
    return buffer;
  }

  CUdeviceptr get() const { return pointer_; }
  size_t bytes() const { return bytes_; }
  void upload(const void* host, size_t bytes) const;
  // Waits for the work on the legacy stream (and the blocking streams it waits for) first.
  void download(void* host, size_t bytes) const;
  void poison() const;  // every byte 0xff: NaN in fp16, bf16 and fp32

 private:
  void reset();
  CUcontext context_ = nullptr;
  CUdeviceptr pointer_ = 0;
  size_t bytes_ = 0;
  std::string what_;
};

class Stream {
 public:
  // flags: CU_STREAM_DEFAULT waits for the legacy stream (where uploads go);
  // CU_STREAM_NON_BLOCKING does not. Either can be captured, unlike the legacy stream.
  Stream(CUcontext context, unsigned flags);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  CUstream get() const { return stream_; }
  void synchronize(const std::string& what) const;

 private:
  CUcontext context_;
  CUstream stream_ = nullptr;
};

// Milliseconds between two events recorded around work on a stream.
class EventTimer {
 public:
  explicit EventTimer(CUcontext context);
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void start(CUstream stream);
  double stop_ms(CUstream stream);  // waits for the stop event

 private:
  CUcontext context_;
  CUevent start_ = nullptr, stop_ = nullptr;
};

class CapturedGraph {
 public:
  // Captures what `enqueue` puts on `stream` (thread-local capture) and instantiates it; a
  // failure ends the capture and rethrows.
  CapturedGraph(CUcontext context, CUstream stream, const std::function<void()>& enqueue);
  ~CapturedGraph();
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;
  void launch(CUstream stream) const;

 private:
  CUcontext context_;
  CUgraph graph_ = nullptr;
  CUgraphExec exec_ = nullptr;
};

}  // namespace glqjit
