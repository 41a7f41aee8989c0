// A minimal CPU emulation of the CUDA features Fireflyer's simple kernels
// use, so their exact source can be compiled by g++ and run on machines
// without a GPU (kernels/emu_test.go). Each block's threads are OS threads;
// blocks run one after another, so a __shared__ variable can be a static.
// __syncthreads is a barrier of the block; __shfl_xor_sync exchanges
// through per-warp slots and one warp barrier.
#pragma once
#include <math.h>

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct emu_dim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline thread_local emu_dim3 threadIdx, blockIdx;
inline emu_dim3 blockDim, gridDim;

using std::max;
using std::min;

inline float __int_as_float(int v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
inline float __uint_as_float(unsigned v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned v;
  std::memcpy(&v, &f, 4);
  return v;
}

struct emu_block {
  std::unique_ptr<std::barrier<>> all;
  std::vector<std::unique_ptr<std::barrier<>>> warp;
  std::vector<float> slots;
};
inline emu_block* emu_cur;

inline void __syncthreads() { emu_cur->all->arrive_and_wait(); }

// Two slot buffers used alternately: a lane can refill a buffer only after
// the next warp barrier, which every lane reaches only after reading it.
inline thread_local unsigned emu_phase;

inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
  const int t = threadIdx.x, w = t / 32, l = t % 32;
  float* s = &emu_cur->slots[(emu_phase++ & 1) * blockDim.x + w * 32];
  s[l] = v;
  emu_cur->warp[w]->arrive_and_wait();
  return s[l ^ lane_mask];
}

// emu_launch runs kernel() for every thread of a grid of 1-D blocks whose
// size is a multiple of 32.
template <class F>
void emu_launch(emu_dim3 grid, emu_dim3 block, F kernel) {
  gridDim = grid;
  blockDim = block;
  const unsigned n = block.x;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        emu_block b;
        b.all = std::make_unique<std::barrier<>>(n);
        for (unsigned w = 0; w < n / 32; ++w) b.warp.push_back(std::make_unique<std::barrier<>>(32));
        b.slots.resize(2 * n);
        emu_cur = &b;
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < n; ++t)
          ts.emplace_back([&, t] {
            threadIdx = {t, 0, 0};
            emu_phase = 0;
            blockIdx = {x, y, z};
            kernel();
          });
        for (auto& th : ts) th.join();
      }
}

template <class T>
std::vector<T> emu_read(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) {
    perror(path.c_str());
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  std::vector<T> v(n / sizeof(T));
  if (fread(v.data(), 1, n, f) != (size_t)n) exit(2);
  fclose(f);
  return v;
}

template <class T>
void emu_write(const std::string& path, const std::vector<T>& v) {
  FILE* f = fopen(path.c_str(), "wb");
  if (!f || fwrite(v.data(), sizeof(T), v.size(), f) != v.size()) exit(2);
  fclose(f);
}
