// AKDQFF's kernel field as one op on the CPU: F(x) = sum_k a_k w((x - c_k) / s_k) f_k over each
// sample's candidate kernels (the spatial index's cell list), its hand-written backward, and the
// per-kernel sums the allocation reads. akdqff_method/fused_field.py builds it at first use and
// holds it to the PyTorch reference (RBFKernelField.fused_features_from_pairs).
//
// Parallel over samples (ATen's parallel_for, OpenMP). Nothing is stored per (sample, kernel)
// pair: the backward recomputes each pair's geometry, and the kernels' gradients are summed in
// one buffer per thread over the kernels the forward used, then reduced in thread order (so a
// result depends on the thread count only in the last bits of a sum).

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

using torch::Tensor;

namespace {

constexpr int64_t kGrain = 64;  // samples per task

struct Candidates {
  const int64_t* rows;        // [N] the sample's row in the index (-1: its cell lists no kernel)
  const int64_t* starts;      // [R] first entry of each row in kernel_ids
  const int64_t* counts;      // [R]
  const int64_t* kernel_ids;  // the rows' kernels, one after another
};

Candidates candidates_of(const Tensor& rows, const Tensor& starts, const Tensor& counts, const Tensor& kernel_ids) {
  return {rows.data_ptr<int64_t>(), starts.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), kernel_ids.data_ptr<int64_t>()};
}

// The kernels' geometry as the op reads it, one row of 8 per kernel (one read per candidate):
// centre (3), 1 / bandwidth (3), amplitude (1), padding. PyTorch packs it once per step over all K
// (vectorised exp; autograd carries the row's gradient on to the log-parameters).
constexpr int64_t kRow = 8;

template <typename T>
struct Kernels {
  const T* rows;  // [K, kRow]
  T cutoff2, floor, inv_span;  // w = max((exp(-d2/2) - floor) * inv_span, 0)

  // The pair's offsets u = (x - c) / s and |u|^2; false outside the support.
  inline bool geometry(const T* x, int64_t k, T* u, T& d2) const {
    const T* r = rows + kRow * k;
    u[0] = (x[0] - r[0]) * r[3];
    u[1] = (x[1] - r[1]) * r[4];
    u[2] = (x[2] - r[2]) * r[5];
    d2 = u[0] * u[0] + u[1] * u[1] + u[2] * u[2];
    return d2 < cutoff2;
  }
  inline T amplitude(int64_t k) const { return rows[kRow * k + 6]; }
  inline T shape(T d2) const { return std::max((std::exp(T(-0.5) * d2) - floor) * inv_span, T(0)); }
};

template <typename T>
Kernels<T> kernels_of(const Tensor& packed, double cutoff) {
  const double floor = std::exp(-0.5 * cutoff * cutoff);
  return {packed.data_ptr<T>(), T(cutoff * cutoff), T(floor), T(1.0 / (1.0 - floor))};
}

// A candidate inside its kernel's support: the kernel and the pair's offsets.
template <typename T>
struct Pair {
  int64_t k;
  T u[3];
  T d2;
};

constexpr int64_t kAhead = 8;    // candidates whose kernel row is fetched ahead
constexpr int64_t kChunk = 256;  // pairs gathered before they are used

// The sample's candidates inside their kernel's support, in chunks: ``visit(pairs, m)``. The
// kernels' rows and (through ``prefetch``) what the caller reads per pair are fetched while the
// geometry of the next candidates is tested: the kernels sit anywhere in memory, and waiting for
// each row in turn is what the op would spend its time on otherwise.
template <typename T, typename Prefetch, typename Visit>
inline void each_inside(const Candidates& cand, const Kernels<T>& kern, int64_t n, const T* x, Prefetch&& prefetch, Visit&& visit) {
  const int64_t row = cand.rows[n];
  if (row < 0) return;
  const int64_t* ids = cand.kernel_ids + cand.starts[row];
  const int64_t count = cand.counts[row];
  Pair<T> pairs[kChunk];
  int64_t m = 0;
  for (int64_t j = 0; j < count; ++j) {
    if (j + kAhead < count) __builtin_prefetch(kern.rows + kRow * ids[j + kAhead]);
    Pair<T>& pair = pairs[m];
    pair.k = ids[j];
    if (!kern.geometry(x, pair.k, pair.u, pair.d2)) continue;
    prefetch(pair.k);
    if (++m == kChunk) {
      visit(pairs, m);
      m = 0;
    }
  }
  if (m) visit(pairs, m);
}

// The feature a kernel contributes: its own row, or with a codebook the centroid it is assigned.
template <typename T>
struct Features {
  const T* raw;             // [K, D]
  const T* codebook;        // [Q, D] (nullptr: not quantized)
  const int64_t* centroid;  // [U] the centroid of each used kernel
  const int64_t* local;     // [K] a kernel's row among the used ones
  int64_t dim;
  inline const T* of(int64_t k) const { return codebook ? codebook + centroid[local[k]] * dim : raw + k * dim; }
};

void check_inputs(const Tensor& positions, const Tensor& rows, const Tensor& starts, const Tensor& counts, const Tensor& kernel_ids,
                  const Tensor& packed) {
  for (const Tensor* t : {&positions, &rows, &starts, &counts, &kernel_ids, &packed}) {
    TORCH_CHECK(t->device().is_cpu() && t->is_contiguous(), "kernel field op: CPU tensors, contiguous");
  }
  for (const Tensor* t : {&rows, &starts, &counts, &kernel_ids}) TORCH_CHECK(t->scalar_type() == torch::kLong, "index tensors are int64");
  TORCH_CHECK(packed.scalar_type() == positions.scalar_type() && packed.dim() == 2 && packed.size(1) == kRow, "kernels are [K, 8]");
  TORCH_CHECK(positions.dim() == 2 && positions.size(1) == 3, "positions are [N, 3]");
  TORCH_CHECK(rows.size(0) == positions.size(0), "one index row per sample");
}

// Each kernel's row among the kernels of ``used`` (-1: not used).
Tensor local_rows(const Tensor& used, int64_t num_kernels) {
  Tensor local = torch::full({num_kernels}, -1, torch::kLong);
  int64_t* local_ptr = local.data_ptr<int64_t>();
  const int64_t* used_ptr = used.data_ptr<int64_t>();
  for (int64_t j = 0; j < used.size(0); ++j) local_ptr[used_ptr[j]] = j;
  return local;
}

Tensor used_from_flags(const std::vector<unsigned char>& hit) {
  std::vector<int64_t> used;
  for (int64_t k = 0; k < static_cast<int64_t>(hit.size()); ++k)
    if (hit[k]) used.push_back(k);
  return torch::tensor(used, torch::kLong);
}

// The nearest centroid (squared distance, ties to the lowest index) of each used kernel's raw feature.
template <typename T>
Tensor nearest_centroids(const Tensor& used, const Tensor& features, const Tensor& codebook) {
  const int64_t n_used = used.size(0), dim = features.size(1), n_centroids = codebook.size(0);
  Tensor centroid = torch::empty({n_used}, torch::kLong);
  const int64_t* used_ptr = used.data_ptr<int64_t>();
  const T* raw = features.data_ptr<T>();
  const T* book = codebook.data_ptr<T>();
  int64_t* out = centroid.data_ptr<int64_t>();
  // ||c||^2 - 2 f.c ranks the centroids as the reference (quantization.assign_to_codebook) does;
  // the codebook is read transposed so that the scores of all centroids accumulate side by side.
  std::vector<T> norms(n_centroids, T(0)), transposed(dim * n_centroids);
  for (int64_t q = 0; q < n_centroids; ++q)
    for (int64_t d = 0; d < dim; ++d) {
      norms[q] += book[q * dim + d] * book[q * dim + d];
      transposed[d * n_centroids + q] = book[q * dim + d];
    }
  at::parallel_for(0, n_used, kGrain, [&](int64_t begin, int64_t end) {
    std::vector<T> scores(n_centroids);
    for (int64_t j = begin; j < end; ++j) {
      const T* f = raw + used_ptr[j] * dim;
      std::fill(scores.begin(), scores.end(), T(0));
      for (int64_t d = 0; d < dim; ++d) {
        const T fd = f[d];
        const T* column = transposed.data() + d * n_centroids;
        for (int64_t q = 0; q < n_centroids; ++q) scores[q] += fd * column[q];
      }
      int64_t best = 0;
      T best_score = norms[0] - T(2) * scores[0];
      for (int64_t q = 1; q < n_centroids; ++q) {
        const T score = norms[q] - T(2) * scores[q];
        if (score < best_score) best = q, best_score = score;
      }
      out[j] = best;
    }
  });
  return centroid;
}

template <typename T>
std::vector<Tensor> forward_impl(const Tensor& positions, const Candidates& cand, const Kernels<T>& kern, const Tensor& features,
                                 const Tensor& codebook, int64_t num_kernels) {
  const int64_t n_samples = positions.size(0), dim = features.size(1);
  const T* x = positions.data_ptr<T>();
  const bool quantized = codebook.size(0) > 0;
  std::vector<unsigned char> hit(num_kernels, 0);
  Tensor used, local, centroid = torch::empty({0}, torch::kLong);
  if (quantized) {  // a kernel's centroid is looked up once, for the kernels some sample uses
    at::parallel_for(0, n_samples, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n)
        each_inside(cand, kern, n, x + 3 * n, [](int64_t) {}, [&](const Pair<T>* pairs, int64_t m) {
          for (int64_t i = 0; i < m; ++i) __atomic_store_n(&hit[pairs[i].k], 1, __ATOMIC_RELAXED);
        });
    });
    used = used_from_flags(hit);
    local = local_rows(used, num_kernels);
    centroid = nearest_centroids<T>(used, features, codebook);
  } else {
    local = torch::empty({0}, torch::kLong);
  }
  const Features<T> feat{features.data_ptr<T>(), quantized ? codebook.data_ptr<T>() : nullptr, centroid.data_ptr<int64_t>(),
                         local.data_ptr<int64_t>(), dim};
  Tensor fused = torch::zeros({n_samples, dim}, positions.options());
  T* out = fused.data_ptr<T>();
  at::parallel_for(0, n_samples, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      T* acc = out + n * dim;
      each_inside(cand, kern, n, x + 3 * n, [&](int64_t k) { __builtin_prefetch(feat.of(k)); }, [&](const Pair<T>* pairs, int64_t m) {
        for (int64_t i = 0; i < m; ++i) {
          const int64_t k = pairs[i].k;
          if (!quantized) __atomic_store_n(&hit[k], 1, __ATOMIC_RELAXED);
          const T w = kern.shape(pairs[i].d2) * kern.amplitude(k);
          const T* f = feat.of(k);
          for (int64_t d = 0; d < dim; ++d) acc[d] += w * f[d];
        }
      });
    }
  });
  if (!quantized) used = used_from_flags(hit);
  return {fused, used, centroid};
}

template <typename T>
std::vector<Tensor> backward_impl(const Tensor& grad_fused, const Tensor& positions, const Candidates& cand, const Kernels<T>& kern,
                                  const Tensor& packed, const Tensor& features, const Tensor& codebook, const Tensor& used,
                                  const Tensor& centroid, bool positions_grad) {
  const int64_t n_samples = positions.size(0), dim = features.size(1), n_used = used.size(0);
  const Tensor local = local_rows(used, packed.size(0));
  const int64_t* local_ptr = local.data_ptr<int64_t>();
  const bool quantized = codebook.size(0) > 0;
  const Features<T> feat{features.data_ptr<T>(), quantized ? codebook.data_ptr<T>() : nullptr, centroid.data_ptr<int64_t>(), local_ptr, dim};

  // One row per used kernel: the packed row's gradient (kRow), then the feature's (D).
  const int64_t width = kRow + dim;
  const int threads = at::get_num_threads();
  Tensor buffers = torch::zeros({threads, n_used, width}, positions.options());
  T* buffer_base = buffers.data_ptr<T>();
  Tensor grad_positions = positions_grad ? torch::zeros_like(positions) : torch::empty({0}, positions.options());
  T* grad_x = positions_grad ? grad_positions.data_ptr<T>() : nullptr;
  const T* x = positions.data_ptr<T>();
  const T* grad = grad_fused.data_ptr<T>();
  at::parallel_for(0, n_samples, kGrain, [&](int64_t begin, int64_t end) {
    T* buffer = buffer_base + static_cast<int64_t>(at::get_thread_num()) * n_used * width;
    const auto prefetch = [&](int64_t k) {
      __builtin_prefetch(feat.of(k));
      __builtin_prefetch(buffer + local_ptr[k] * width, 1);
    };
    for (int64_t n = begin; n < end; ++n) {
      const T* g = grad + n * dim;
      const T* xn = x + 3 * n;
      T gx[3] = {T(0), T(0), T(0)};
      each_inside(cand, kern, n, xn, prefetch, [&](const Pair<T>* pairs, int64_t m) {
        for (int64_t i = 0; i < m; ++i) {
          const int64_t k = pairs[i].k;
          const T* u = pairs[i].u;
          const T* f = feat.of(k);
          T dot = T(0);
          for (int64_t d = 0; d < dim; ++d) dot += g[d] * f[d];
          const T* r = kern.rows + kRow * k;
          const T amplitude = r[6];
          const T gauss = std::exp(T(-0.5) * pairs[i].d2);
          const T shape = std::max((gauss - kern.floor) * kern.inv_span, T(0));
          T* row = buffer + local_ptr[k] * width;
          for (int64_t d = 0; d < dim; ++d) row[kRow + d] += shape * amplitude * g[d];  // straight through to the raw feature
          row[6] += dot * shape;
          const T grad_d2 = dot * amplitude * T(-0.5) * gauss * kern.inv_span;
          for (int c = 0; c < 3; ++c) {  // u = (x - c) * inv
            const T grad_u = grad_d2 * T(2) * u[c];
            row[c] -= grad_u * r[3 + c];
            row[3 + c] += grad_u * (xn[c] - r[c]);
            gx[c] += grad_u * r[3 + c];
          }
        }
      });
      if (grad_x)
        for (int c = 0; c < 3; ++c) grad_x[3 * n + c] = gx[c];
    }
  });

  Tensor grad_packed = torch::zeros_like(packed), grad_features = torch::zeros_like(features);
  T* gp = grad_packed.data_ptr<T>();
  T* gf = grad_features.data_ptr<T>();
  const int64_t* used_ptr = used.data_ptr<int64_t>();
  at::parallel_for(0, n_used, kGrain, [&](int64_t begin, int64_t end) {
    std::vector<T> sum(width);
    for (int64_t j = begin; j < end; ++j) {
      std::fill(sum.begin(), sum.end(), T(0));
      for (int t = 0; t < threads; ++t) {
        const T* row = buffer_base + (static_cast<int64_t>(t) * n_used + j) * width;
        for (int64_t c = 0; c < width; ++c) sum[c] += row[c];
      }
      const int64_t k = used_ptr[j];
      for (int64_t c = 0; c < kRow; ++c) gp[kRow * k + c] = sum[c];
      for (int64_t d = 0; d < dim; ++d) gf[k * dim + d] = sum[kRow + d];
    }
  });
  return {grad_positions, grad_packed, grad_features};
}

// Per kernel, the sum over samples of its share of the sample's kernel weight (a_k w_k over the
// sample's total) times the sample's ``values`` [N, C]: what allocation.AKDStrategy accumulates.
template <typename T>
Tensor kernel_sums_impl(const Tensor& positions, const Candidates& cand, const Kernels<T>& kern, const Tensor& values, int64_t num_kernels) {
  const int64_t n_samples = positions.size(0), channels = values.size(1);
  const int threads = at::get_num_threads();
  Tensor buffers = torch::zeros({threads, num_kernels, channels}, values.options());
  T* buffer_base = buffers.data_ptr<T>();
  const T* x = positions.data_ptr<T>();
  const T* value = values.data_ptr<T>();
  at::parallel_for(0, n_samples, kGrain, [&](int64_t begin, int64_t end) {
    T* buffer = buffer_base + static_cast<int64_t>(at::get_thread_num()) * num_kernels * channels;
    for (int64_t n = begin; n < end; ++n) {
      T total = T(0);
      each_inside(cand, kern, n, x + 3 * n, [](int64_t) {}, [&](const Pair<T>* pairs, int64_t m) {
        for (int64_t i = 0; i < m; ++i) total += kern.shape(pairs[i].d2) * kern.amplitude(pairs[i].k);
      });
      const T scale = T(1) / std::max(total, T(1e-12));
      each_inside(cand, kern, n, x + 3 * n, [&](int64_t k) { __builtin_prefetch(buffer + k * channels, 1); },
                  [&](const Pair<T>* pairs, int64_t m) {
                    for (int64_t i = 0; i < m; ++i) {
                      const T share = kern.shape(pairs[i].d2) * kern.amplitude(pairs[i].k) * scale;
                      for (int64_t c = 0; c < channels; ++c) buffer[pairs[i].k * channels + c] += share * value[n * channels + c];
                    }
                  });
    }
  });
  return buffers.sum(0);
}

}  // namespace

std::vector<Tensor> kernel_field_forward(Tensor positions, Tensor rows, Tensor starts, Tensor counts, Tensor kernel_ids, Tensor packed,
                                         Tensor features, Tensor codebook, double cutoff) {
  check_inputs(positions, rows, starts, counts, kernel_ids, packed);
  TORCH_CHECK(features.is_contiguous() && codebook.is_contiguous() && features.scalar_type() == positions.scalar_type() &&
                  codebook.scalar_type() == positions.scalar_type() && features.size(0) == packed.size(0),
              "features [K, D] and codebook [Q, D] in the positions' dtype");
  const Candidates cand = candidates_of(rows, starts, counts, kernel_ids);
  std::vector<Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), "kernel_field_forward", [&] {
    out = forward_impl<scalar_t>(positions, cand, kernels_of<scalar_t>(packed, cutoff), features, codebook, packed.size(0));
  });
  return out;
}

std::vector<Tensor> kernel_field_backward(Tensor grad_fused, Tensor positions, Tensor rows, Tensor starts, Tensor counts, Tensor kernel_ids,
                                          Tensor packed, Tensor features, Tensor codebook, Tensor used, Tensor centroid, double cutoff,
                                          bool positions_grad) {
  check_inputs(positions, rows, starts, counts, kernel_ids, packed);
  const Candidates cand = candidates_of(rows, starts, counts, kernel_ids);
  std::vector<Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), "kernel_field_backward", [&] {
    out = backward_impl<scalar_t>(grad_fused.contiguous(), positions, cand, kernels_of<scalar_t>(packed, cutoff), packed, features, codebook,
                                  used, centroid, positions_grad);
  });
  return out;
}

Tensor kernel_field_sums(Tensor positions, Tensor rows, Tensor starts, Tensor counts, Tensor kernel_ids, Tensor packed, Tensor values,
                         double cutoff) {
  check_inputs(positions, rows, starts, counts, kernel_ids, packed);
  const Candidates cand = candidates_of(rows, starts, counts, kernel_ids);
  Tensor out;
  AT_DISPATCH_FLOATING_TYPES(positions.scalar_type(), "kernel_field_sums", [&] {
    out = kernel_sums_impl<scalar_t>(positions, cand, kernels_of<scalar_t>(packed, cutoff), values.contiguous(), packed.size(0));
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &kernel_field_forward, "F(x), the used kernels and their centroids");
  m.def("backward", &kernel_field_backward, "gradients of the positions, the packed kernel rows and the features");
  m.def("kernel_sums", &kernel_field_sums, "per kernel: the sum of its weight share times the samples' values");
}
