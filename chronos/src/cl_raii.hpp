// RAII owners for OpenCL objects. Platform and root-device ids are not reference counted
// (OpenCL 1.2, section 4), so only contexts, queues and memory objects need owners.
#pragma once

#include <CL/cl.h>

namespace chronos {

/** Owns one OpenCL object and releases it with Release on destruction. Move-only. */
template <typename T, cl_int (*Release)(T)>
class ClHandle {
 public:
  ClHandle() = default;
  explicit ClHandle(T handle) : h_(handle) {}
  ClHandle(ClHandle &&other) noexcept : h_(other.h_) { other.h_ = nullptr; }
  ClHandle &operator=(ClHandle &&other) noexcept {
    if (this != &other) {
      reset();
      h_ = other.h_;
      other.h_ = nullptr;
    }
    return *this;
  }
  ClHandle(const ClHandle &) = delete;
  ClHandle &operator=(const ClHandle &) = delete;
  ~ClHandle() { reset(); }

  T get() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }
  void reset() {
    if (h_ != nullptr) Release(h_);
    h_ = nullptr;
  }

 private:
  T h_ = nullptr;
};

using ClContext = ClHandle<cl_context, clReleaseContext>;
using ClQueue = ClHandle<cl_command_queue, clReleaseCommandQueue>;
using ClMem = ClHandle<cl_mem, clReleaseMemObject>;

}  // namespace chronos
