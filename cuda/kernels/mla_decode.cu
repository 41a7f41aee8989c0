// Fireflyer: a simple BF16 MLA decode kernel over a paged KV cache
// (stage 1 of the CUDA backend), in two launches as FlashMLA does:
// mla_decode_partial computes, for each split of each sequence's keys, the
// normalised partial output and its log-sum-exp; mla_decode_combine merges
// the splits.
//
// q            [b, s_q, h_q, D_QK] BF16 (row r = sq * h_q + h)
// kv           [pages, PAGE, 1, D_QK] BF16; V is the first D_V columns of K
// block_table  [b, bt_stride] int32 page indices
// cache_seqlens [b] int32
// o_part       [b, splits, s_q * h_q, D_V] float32 (workspace)
// lse_part     [b, splits, s_q * h_q] float32 (workspace), natural log
// out          [b, s_q, h_q, D_V] BF16
// lse          [b, h_q, s_q] float32, natural log; +inf for a row with no keys
//              (FlashMLA's convention, as the mla package); partial LSEs use -inf
//
// Causal (s_q > 1): query sq sees keys t < seqlen - (s_q - 1 - sq).
// Split s of a sequence with P = ceil(seqlen / PAGE) pages covers pages
// [s * ceil(P / splits), (s + 1) * ceil(P / splits)).
//
// Self-contained: no headers.

typedef unsigned short u16;
typedef unsigned int u32;

namespace fireflyer {

struct alignas(16) u32x4 {
  u32 x, y, z, w;
};

__device__ __forceinline__ float bf16_to_float(u16 v) { return __uint_as_float(((u32)v) << 16); }

__device__ __forceinline__ u16 float_to_bf16(float f) {
  u32 u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return (u16)((u >> 16) | 0x40u);
  }
  u += 0x7fffu + ((u >> 16) & 1u);
  return (u16)(u >> 16);
}

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }
__device__ __forceinline__ float pos_inf() { return __int_as_float(0x7f800000); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

}  // namespace fireflyer

// One block of 8 warps serves 8 query rows of one sequence and one split;
// each warp owns one row: lane l holds q[l + 32 i] and accumulates
// out[l + 32 i]. Keys go through shared memory 16 at a time.
template <int D_QK, int D_V, int PAGE>
__global__ void __launch_bounds__(256) mla_decode_partial(
    float* __restrict__ o_part, float* __restrict__ lse_part,
    const u16* __restrict__ q, const u16* __restrict__ kv,
    const int* __restrict__ block_table, const int* __restrict__ cache_seqlens,
    int s_q, int h_q, int num_splits, int bt_stride, float softmax_scale, int causal) {
  static_assert(D_QK % 32 == 0 && D_V % 32 == 0 && D_V <= D_QK && D_QK % 8 == 0, "bad head dims");
  constexpr int WARPS = 8;
  constexpr int CHUNK = 16;
  constexpr int QPL = D_QK / 32;
  constexpr int VPL = D_V / 32;
  constexpr int VEC = D_QK / 8;  // 16-byte vectors per key row
  __shared__ fireflyer::u32x4 ks_raw[CHUNK * VEC];
  const u16* ks = (const u16*)ks_raw;

  const int rows = s_q * h_q;
  const int bi = blockIdx.z;
  const int split = blockIdx.y;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * WARPS + warp;
  const bool active = row < rows;

  const int seqlen = cache_seqlens[bi];
  const int pages = (seqlen + PAGE - 1) / PAGE;
  const int per = (pages + num_splits - 1) / num_splits;
  const int t_begin = min(split * per * PAGE, seqlen);
  const int t_end = min((split + 1) * per * PAGE, seqlen);
  int limit = seqlen;
  if (causal && active) limit = seqlen - (s_q - 1 - row / h_q);

  float qv[QPL];
  const long long qrow = ((long long)bi * rows + (active ? row : 0)) * D_QK;
#pragma unroll
  for (int i = 0; i < QPL; ++i) qv[i] = active ? fireflyer::bf16_to_float(q[qrow + lane + 32 * i]) : 0.f;

  float m_run = fireflyer::neg_inf();
  float l_run = 0.f;
  float acc[VPL];
#pragma unroll
  for (int i = 0; i < VPL; ++i) acc[i] = 0.f;

  for (int t0 = t_begin; t0 < t_end; t0 += CHUNK) {
    const int nk = min(CHUNK, t_end - t0);
    __syncthreads();  // the previous chunk is consumed
    for (int idx = threadIdx.x; idx < CHUNK * VEC; idx += 256) {
      const int j = idx / VEC, c = idx % VEC;
      fireflyer::u32x4 v = {0u, 0u, 0u, 0u};
      if (j < nk) {
        const int t = t0 + j;
        const long long page = block_table[(long long)bi * bt_stride + t / PAGE];
        const fireflyer::u32x4* src = (const fireflyer::u32x4*)(kv + (page * PAGE + t % PAGE) * D_QK);
        v = src[c];
      }
      ks_raw[idx] = v;
    }
    __syncthreads();
    if (!active) continue;

    float s[CHUNK];
    float cmax = fireflyer::neg_inf();
#pragma unroll
    for (int j = 0; j < CHUNK; ++j) {
      float dot = 0.f;
#pragma unroll
      for (int i = 0; i < QPL; ++i) dot = fmaf(qv[i], fireflyer::bf16_to_float(ks[j * D_QK + lane + 32 * i]), dot);
      dot = fireflyer::warp_sum(dot);
      const bool ok = j < nk && t0 + j < limit;
      s[j] = ok ? dot * softmax_scale : fireflyer::neg_inf();
      cmax = fmaxf(cmax, s[j]);
    }
    if (cmax == fireflyer::neg_inf()) continue;
    const float m_new = fmaxf(m_run, cmax);
    const float alpha = expf(m_run - m_new);  // 0 when m_run is -inf
    l_run *= alpha;
#pragma unroll
    for (int i = 0; i < VPL; ++i) acc[i] *= alpha;
#pragma unroll
    for (int j = 0; j < CHUNK; ++j) {
      const float p = expf(s[j] - m_new);  // 0 for masked keys
      l_run += p;
#pragma unroll
      for (int i = 0; i < VPL; ++i) acc[i] = fmaf(p, fireflyer::bf16_to_float(ks[j * D_QK + lane + 32 * i]), acc[i]);
    }
    m_run = m_new;
  }

  if (!active) return;
  const long long prow = ((long long)bi * num_splits + split) * rows + row;
  const float inv = l_run > 0.f ? 1.f / l_run : 0.f;
#pragma unroll
  for (int i = 0; i < VPL; ++i) o_part[prow * D_V + lane + 32 * i] = acc[i] * inv;
  if (lane == 0) lse_part[prow] = l_run > 0.f ? m_run + logf(l_run) : fireflyer::neg_inf();
}

// One block of 128 threads merges the splits of one row of one sequence.
template <int D_V>
__global__ void __launch_bounds__(128) mla_decode_combine(
    u16* __restrict__ out, float* __restrict__ lse,
    const float* __restrict__ o_part, const float* __restrict__ lse_part,
    int s_q, int h_q, int num_splits) {
  static_assert(D_V % 128 == 0, "D_V must be a multiple of 128");
  constexpr int PER = D_V / 128;
  const int rows = s_q * h_q;
  const int row = blockIdx.x;
  const int bi = blockIdx.y;
  const long long base = (long long)bi * num_splits * rows + row;  // split s at base + s * rows

  float mx = fireflyer::neg_inf();
  for (int s = 0; s < num_splits; ++s) mx = fmaxf(mx, lse_part[base + (long long)s * rows]);
  float total = 0.f;
  float o[PER];
#pragma unroll
  for (int i = 0; i < PER; ++i) o[i] = 0.f;
  if (mx != fireflyer::neg_inf()) {
    for (int s = 0; s < num_splits; ++s) {
      const long long prow = base + (long long)s * rows;
      const float w = expf(lse_part[prow] - mx);  // 0 for empty splits
      if (w == 0.f) continue;
      total += w;
#pragma unroll
      for (int i = 0; i < PER; ++i) o[i] = fmaf(w, o_part[prow * D_V + threadIdx.x + 128 * i], o[i]);
    }
  }
  const float inv = total > 0.f ? 1.f / total : 0.f;
  const long long orow = ((long long)bi * rows + row) * D_V;
#pragma unroll
  for (int i = 0; i < PER; ++i) out[orow + threadIdx.x + 128 * i] = fireflyer::float_to_bf16(o[i] * inv);
  if (threadIdx.x == 0) {
    const int sq = row / h_q, h = row % h_q;
    lse[((long long)bi * h_q + h) * s_q + sq] = total > 0.f ? mx + logf(total) : fireflyer::pos_inf();
  }
}
