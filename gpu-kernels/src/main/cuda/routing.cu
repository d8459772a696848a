// MoE routers on the GPU; see routing.cuh. CPU reference: org.moespark.ops.Routing.
#include "routing.cuh"

#include <climits>
#include <cmath>

#include "formats.cuh"

namespace moespark {
namespace {

constexpr int kV = kRoutingVpt;
constexpr int kBlock = 128;
constexpr unsigned kFull = 0xffffffffu;

// Selection keys never take -inf or NaN: -inf and NaN become -FLT_MAX, so that -inf can mark a
// taken (or padding) slot that is below every candidate. The CPU ranks -inf below -FLT_MAX; the two
// are confused here only when both occur in one row (documented in RoutingGpu).
__device__ __forceinline__ float key_of(float x) { return x >= -3.402823466e+38f ? x : -3.402823466e+38f; }

// fp32 sigmoid with IEEE operations (the CPU computes it in double and rounds once: a few ulp apart).
__device__ __forceinline__ float sigmoid_f(float x) { return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x))); }

__device__ __forceinline__ void load_values(const float* row, int e0, int experts, bool vec, float (&x)[kV]) {
  if (vec) {
#pragma unroll
    for (int c = 0; c < kV / 4; ++c) {
      const int e = e0 + 4 * c;
      float4 v = make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
      if (e < experts) v = __ldg(reinterpret_cast<const float4*>(row + e));
      x[4 * c] = v.x;
      x[4 * c + 1] = v.y;
      x[4 * c + 2] = v.z;
      x[4 * c + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kV; ++i) x[i] = e0 + i < experts ? __ldg(row + e0 + i) : -INFINITY;
  }
}

__device__ __forceinline__ void load_values(const uint16_t* row, int e0, int experts, bool vec, float (&x)[kV]) {
  if (vec) {
#pragma unroll
    for (int c = 0; c < kV / 8; ++c) {
      const int e = e0 + 8 * c;
      if (e < experts) {
        const uint4 v = __ldg(reinterpret_cast<const uint4*>(row + e));
        const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          x[8 * c + 2 * j] = __uint_as_float(w[j] << 16);
          x[8 * c + 2 * j + 1] = __uint_as_float(w[j] & 0xffff0000u);
        }
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) x[8 * c + j] = -INFINITY;
      }
    }
  } else {
#pragma unroll
    for (int i = 0; i < kV; ++i) x[i] = e0 + i < experts ? fmt::bf16_decode(__ldg(row + e0 + i)) : -INFINITY;
  }
}

// One token per L lanes; see routing.cuh for the layout. Shared memory per token: group scores
// [n_group] (grouped mode only), selected weights [K] and ids [K].
template <typename T, int L>
__global__ void __launch_bounds__(kBlock) routing_kernel(RoutingArgs a, bool vec, int group_slots) {
  extern __shared__ float smem[];
  constexpr int kTokensPerBlock = kBlock / L;
  const int slot = threadIdx.x / L;
  const int q = threadIdx.x % L;
  const int64_t tok = static_cast<int64_t>(blockIdx.x) * kTokensPerBlock + slot;
  const bool active = tok < a.tokens;
  const int experts = a.experts;
  const int k = a.top_k;
  const int e0 = q * kV;
  float* gsc = smem + slot * group_slots;
  float* wsel = smem + kTokensPerBlock * group_slots + slot * k;
  int* isel = reinterpret_cast<int*>(smem + kTokensPerBlock * group_slots + kTokensPerBlock * k) + slot * k;

  float v[kV];  // selection keys
  float s[kV] = {};  // grouped mode: the unbiased sigmoid scores (the weights)
  const T* row = static_cast<const T*>(a.logits) + (active ? tok : 0) * static_cast<int64_t>(experts);
  load_values(row, e0, experts, vec, v);
  bool avail[kV];
#pragma unroll
  for (int i = 0; i < kV; ++i) avail[i] = active && e0 + i < experts;

  if (a.mode == kRouteSoftmaxTopK) {
    // exp(x - max) * (1 / sum): max exact, sum in a lane-tree order (the CPU sums ascending).
    float m = -INFINITY;
#pragma unroll
    for (int i = 0; i < kV; ++i) m = avail[i] ? fmaxf(m, v[i]) : m;
#pragma unroll
    for (int off = L / 2; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(kFull, m, off, L));
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kV; ++i) {
      v[i] = avail[i] ? expf(__fsub_rn(v[i], m)) : 0.0f;
      sum = __fadd_rn(sum, v[i]);
    }
#pragma unroll
    for (int off = L / 2; off > 0; off >>= 1) sum = __fadd_rn(sum, __shfl_xor_sync(kFull, sum, off, L));
    const float inv = __frcp_rn(sum);
#pragma unroll
    for (int i = 0; i < kV; ++i) v[i] = __fmul_rn(v[i], inv);
  } else if (a.mode == kRouteSigmoidGroup) {
#pragma unroll
    for (int i = 0; i < kV; ++i) {
      s[i] = sigmoid_f(v[i]);
      v[i] = (a.bias != nullptr && avail[i]) ? __fadd_rn(s[i], __ldg(a.bias + e0 + i)) : s[i];
    }
    if (a.n_group > 1) {
      // Group score = sum of the group's top-2 biased scores (top-1 for groups of one expert).
      const int gsize = experts / a.n_group;
      if (gsize >= kV) {
        // The lane's 16 experts lie in one group of gsize/16 lanes (a power of two): top-2 per lane,
        // then a butterfly merge within the group's lanes.
        float a1 = -INFINITY, a2 = -INFINITY;
#pragma unroll
        for (int i = 0; i < kV; ++i) {
          const float t = key_of(v[i]);
          if (t > a1) {
            a2 = a1;
            a1 = t;
          } else if (t > a2) {
            a2 = t;
          }
        }
        const int lanes_per_group = gsize / kV;
        for (int off = 1; off < lanes_per_group; off <<= 1) {  // uniform: gsize is per launch
          const float b1 = __shfl_xor_sync(kFull, a1, off, L);
          const float b2 = __shfl_xor_sync(kFull, a2, off, L);
          const float hi = fmaxf(a1, b1);
          a2 = fmaxf(fminf(a1, b1), fmaxf(a2, b2));
          a1 = hi;
        }
        if (q % lanes_per_group == 0 && e0 < experts) gsc[e0 / gsize] = __fadd_rn(__fadd_rn(0.0f, a1), a2);
      } else {
        // gsize divides 16: whole groups inside the lane.
        float a1 = -INFINITY, a2 = -INFINITY;
#pragma unroll
        for (int i = 0; i < kV; ++i) {
          const float t = key_of(v[i]);
          if (t > a1) {
            a2 = a1;
            a1 = t;
          } else if (t > a2) {
            a2 = t;
          }
          if ((i + 1) % gsize == 0) {
            if (e0 + i < experts) {
              gsc[(e0 + i) / gsize] = gsize >= 2 ? __fadd_rn(__fadd_rn(0.0f, a1), a2) : __fadd_rn(0.0f, a1);
            }
            a1 = -INFINITY;
            a2 = -INFINITY;
          }
        }
      }
      __syncwarp();
      // Keep the topk_group best groups: rank in (score desc, group asc), as the CPU's top-k.
      int last = -1;
      bool keep = true;
#pragma unroll
      for (int i = 0; i < kV; ++i) {
        const int e = e0 + i;
        if (e < experts) {
          const int g = e / gsize;
          if (g != last) {
            const float sg = gsc[g];
            int rank = 0;
            for (int h = 0; h < a.n_group; ++h) {
              const float sh = gsc[h];
              rank += (sh > sg || (sh == sg && h < g)) ? 1 : 0;
            }
            keep = rank < a.topk_group;
            last = g;
          }
          if (!keep) v[i] = a.mask_zero ? 0.0f : -INFINITY;
        }
      }
    }
  }

  // Top-k: K rounds of an L-lane arg-max over (key desc, expert asc). Taken and padding slots hold
  // -inf, below every key (key_of maps real values to >= -FLT_MAX).
#pragma unroll
  for (int i = 0; i < kV; ++i) v[i] = avail[i] ? key_of(v[i]) : -INFINITY;
  float bv = -INFINITY, bs = 0.0f;
  int bi = INT_MAX;
#pragma unroll
  for (int i = 0; i < kV; ++i) {
    if (v[i] > bv) {
      bv = v[i];
      bi = e0 + i;
      bs = s[i];
    }
  }
  float wsum = 0.0f;
  for (int j = 0; j < k; ++j) {
    float rv = bv;
    int ri = bi;
#pragma unroll
    for (int off = L / 2; off > 0; off >>= 1) {
      const float ov = __shfl_xor_sync(kFull, rv, off, L);
      const int oi = __shfl_xor_sync(kFull, ri, off, L);
      if (ov > rv || (ov == rv && oi < ri)) {
        rv = ov;
        ri = oi;
      }
    }
    const int owner = ri / kV;
    float w = rv;
    if (a.mode == kRouteSigmoidGroup) w = __shfl_sync(kFull, bs, owner & (L - 1), L);
    if (q == 0) {
      wsel[j] = w;
      isel[j] = ri;
    }
    wsum = __fadd_rn(wsum, w);
    if (q == owner) {
      bv = -INFINITY;
      bi = INT_MAX;
#pragma unroll
      for (int i = 0; i < kV; ++i) {
        if (e0 + i == ri) v[i] = -INFINITY;
        if (v[i] > bv) {
          bv = v[i];
          bi = e0 + i;
          bs = s[i];
        }
      }
    }
  }
  __syncwarp();
  if (!active) return;

  const int64_t out0 = tok * k;
  if (a.mode == kRouteTopKSoftmax) {
    // softmax over the K selected logits in slot order: max = slot 0, sum ascending, e * (1/sum).
    const float m = wsel[0];
    float sum = 0.0f;
    for (int j = 0; j < k; ++j) sum = __fadd_rn(sum, expf(__fsub_rn(wsel[j], m)));
    const float inv = __frcp_rn(sum);
    for (int j = q; j < k; j += L) {
      a.ids[out0 + j] = isel[j];
      a.weights[out0 + j] = __fmul_rn(expf(__fsub_rn(wsel[j], m)), inv);
    }
  } else if (a.mode == kRouteSoftmaxTopK) {
    for (int j = q; j < k; j += L) {
      a.ids[out0 + j] = isel[j];
      a.weights[out0 + j] = a.renormalize ? __fdiv_rn(wsel[j], wsum) : wsel[j];
    }
  } else {
    const float denom = __fadd_rn(wsum, 1e-20f);
    for (int j = q; j < k; j += L) {
      float w = wsel[j];
      if (a.renormalize) w = __fdiv_rn(w, denom);
      a.ids[out0 + j] = isel[j];
      a.weights[out0 + j] = __fmul_rn(w, a.scale);
    }
  }
}

template <typename T>
void launch_typed(const RoutingArgs& a, int lanes, bool vec, int group_slots, cudaStream_t stream) {
  const int tpb = kBlock / lanes;
  const unsigned grid = static_cast<unsigned>((a.tokens + tpb - 1) / tpb);
  const size_t shm = static_cast<size_t>(tpb) * (4u * group_slots + 8u * a.top_k);
  switch (lanes) {
    case 1: routing_kernel<T, 1><<<grid, kBlock, shm, stream>>>(a, vec, group_slots); break;
    case 2: routing_kernel<T, 2><<<grid, kBlock, shm, stream>>>(a, vec, group_slots); break;
    case 4: routing_kernel<T, 4><<<grid, kBlock, shm, stream>>>(a, vec, group_slots); break;
    case 8: routing_kernel<T, 8><<<grid, kBlock, shm, stream>>>(a, vec, group_slots); break;
    case 16: routing_kernel<T, 16><<<grid, kBlock, shm, stream>>>(a, vec, group_slots); break;
    default: routing_kernel<T, 32><<<grid, kBlock, shm, stream>>>(a, vec, group_slots); break;
  }
}

bool is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

int routing_lanes(int32_t experts) {
  const int need = (experts + kV - 1) / kV;
  int l = 1;
  while (l < need) l <<= 1;
  return l;
}

bool launch_routing(const RoutingArgs& a, cudaStream_t stream) {
  if (a.experts < 1 || a.experts > kRoutingMaxExperts || a.top_k < 1 || a.top_k > a.experts || a.tokens < 0) {
    return false;
  }
  if (a.mode != kRouteSoftmaxTopK && a.mode != kRouteTopKSoftmax && a.mode != kRouteSigmoidGroup) return false;
  int group_slots = 0;
  if (a.mode == kRouteSigmoidGroup && a.n_group > 1) {
    if (a.experts % a.n_group != 0 || !is_pow2(a.experts / a.n_group)) return false;
    if (a.topk_group < 1 || a.topk_group > a.n_group) return false;
    group_slots = a.n_group;
  }
  if (a.tokens == 0) return true;
  const size_t elem = a.bf16 ? 2 : 4;
  const bool vec = (static_cast<size_t>(a.experts) * elem) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(a.logits) % 16 == 0;
  const int lanes = routing_lanes(a.experts);
  if (a.bf16) {
    launch_typed<uint16_t>(a, lanes, vec, group_slots, stream);
  } else {
    launch_typed<float>(a, lanes, vec, group_slots, stream);
  }
  return true;
}

}  // namespace moespark
