// Fireflyer: a simple, correct FP8 E4M3 block-scaled GEMM in the NT layout
// (stage 1 of the CUDA backend; the Hopper TMA/WGMMA kernel comes later).
//
//   D[m, n] = sum_kb SA[m, kb] * SB[n / 128, kb] * sum_{k in block kb} A[m, k] * B[n, k]
//
// A  [M, K] E4M3 bytes, row stride lda bytes      (per-token 1x128 scaled)
// SA float32, element (m, kb) at sa[m * sa_stride_m + kb * sa_stride_k]
// B  [N, K] E4M3 bytes, row stride ldb bytes      (128x128 block scaled)
// SB [ceil(N/128), ceil(K/128)] float32, row-major
// D  [M, N] BF16 (OUT_BF16 = 1) or float32 (OUT_BF16 = 0), row stride ldd elements
//
// Products of two E4M3 values are exact in float32; each 128-wide K block is
// summed in float32, scaled, and added to a float32 accumulator, as
// DeepGEMM promotes its FP8 partial sums every 128 K.
//
// Self-contained: no headers, so NVRTC needs no include path.

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

namespace fireflyer {

// e4m3_to_float decodes OCP FP8 E4M3 ("e4m3fn"): bias 7, subnormals, no
// infinities, S.1111.111 is NaN.
__device__ __forceinline__ float e4m3_to_float(u32 v) {
  const u32 sign = (v & 0x80u) << 24;
  const u32 em = v & 0x7fu;
  float mag;
  if (em == 0x7fu) {
    mag = __int_as_float(0x7fc00000);
  } else if (em < 8u) {
    mag = (float)em * 0.001953125f;  // subnormal: m * 2^-9
  } else {
    mag = __uint_as_float((((em >> 3) + 120u) << 23) | ((em & 7u) << 20));
  }
  return __uint_as_float(__float_as_uint(mag) | sign);
}

// float_to_bf16 rounds to nearest even; NaN stays NaN.
__device__ __forceinline__ u16 float_to_bf16(float f) {
  u32 u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return (u16)((u >> 16) | 0x40u);
  }
  u += 0x7fffu + ((u >> 16) & 1u);
  return (u16)(u >> 16);
}

}  // namespace fireflyer

// One block of 256 threads computes a BM x BN tile of D; thread (ty, tx) of
// the 16 x 16 grid owns rows ty + 16 i and columns tx + 16 j.
template <int BM, int BN, int OUT_BF16>
__global__ void __launch_bounds__(256) fp8_gemm_nt(
    void* __restrict__ d, const u8* __restrict__ a, const float* __restrict__ sa,
    const u8* __restrict__ b, const float* __restrict__ sb,
    int m, int n, int k, int lda, int ldb, int ldd, int sa_stride_m, int sa_stride_k) {
  static_assert(BM % 16 == 0 && BN % 16 == 0, "tile sizes must be multiples of 16");
  constexpr int BK = 32;  // divides 128, so a K step never straddles a scale block
  constexpr int TM = BM / 16;
  constexpr int TN = BN / 16;
  __shared__ float as[BK][BM + 4];
  __shared__ float bs[BK][BN + 4];

  const int tid = threadIdx.x;
  const int tx = tid % 16;
  const int ty = tid / 16;
  const int m0 = blockIdx.y * BM;
  const int n0 = blockIdx.x * BN;
  const int kblocks = (k + 127) / 128;

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;

  for (int kb = 0; kb < kblocks; ++kb) {
    float part[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) part[i][j] = 0.f;

    const int kend = min(k, kb * 128 + 128);
    for (int k0 = kb * 128; k0 < kend; k0 += BK) {
      for (int idx = tid; idx < BM * BK; idx += 256) {
        const int r = idx / BK, c = idx % BK;
        const int gm = m0 + r, gk = k0 + c;
        as[c][r] = (gm < m && gk < kend) ? fireflyer::e4m3_to_float(a[(long long)gm * lda + gk]) : 0.f;
      }
      for (int idx = tid; idx < BN * BK; idx += 256) {
        const int r = idx / BK, c = idx % BK;
        const int gn = n0 + r, gk = k0 + c;
        bs[c][r] = (gn < n && gk < kend) ? fireflyer::e4m3_to_float(b[(long long)gn * ldb + gk]) : 0.f;
      }
      __syncthreads();
#pragma unroll 4
      for (int kk = 0; kk < BK; ++kk) {
        float av[TM], bv[TN];
#pragma unroll
        for (int i = 0; i < TM; ++i) av[i] = as[kk][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < TN; ++j) bv[j] = bs[kk][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) part[i][j] = fmaf(av[i], bv[j], part[i][j]);
      }
      __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int gm = m0 + ty + 16 * i;
      const float s_a = gm < m ? sa[(long long)gm * sa_stride_m + (long long)kb * sa_stride_k] : 0.f;
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        const int gn = n0 + tx + 16 * j;
        const float s_b = gn < n ? sb[(long long)(gn / 128) * kblocks + kb] : 0.f;
        acc[i][j] = fmaf(part[i][j], s_a * s_b, acc[i][j]);
      }
    }
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int gm = m0 + ty + 16 * i;
    if (gm >= m) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int gn = n0 + tx + 16 * j;
      if (gn >= n) continue;
      const long long off = (long long)gm * ldd + gn;
      if (OUT_BF16) {
        ((u16*)d)[off] = fireflyer::float_to_bf16(acc[i][j]);
      } else {
        ((float*)d)[off] = acc[i][j];
      }
    }
  }
}
