#include "format/reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <thread>

#include "format/codebook.hpp"
#include "format/hadamard.hpp"
#include "format/packing.hpp"
#include "glqjit/error.hpp"

namespace glqjit {
namespace {

// Codebook values are multiples of 1/4 below 4 in magnitude, so float tables are exact and
// half the size of double ones (the E8P table then fits in 2 MiB of cache).
std::vector<float> flatten_e8p() {
  std::vector<float> table(65536 * 8);
  for (unsigned code = 0; code < 65536; ++code) {
    const std::array<double, 8> v = decode_e8p(uint16_t(code));
    std::copy(v.begin(), v.end(), table.begin() + code * 8);
  }
  return table;
}

std::vector<float> flatten_e81b() {
  std::vector<float> table(256 * 8);
  for (unsigned code = 0; code < 256; ++code)
    std::copy(e81b_rows()[code].begin(), e81b_rows()[code].end(), table.begin() + code * 8);
  return table;
}

const float* decoded_table(StageKind kind) {
  static const std::vector<float> e8p = flatten_e8p();
  static const std::vector<float> e81b = flatten_e81b();
  return kind == StageKind::e8p ? e8p.data() : e81b.data();
}

// One stage's codes in row-major idx order, widened to 16 bits so both kinds share one loop.
struct StageCodes {
  const float* table;
  std::vector<uint16_t> codes;
};

StageCodes stage_codes(const QuantizedLayer& layer, size_t stage) {
  const StageKind kind = layer.recipe.stages[stage];
  const int64_t m_pad = layer.geometry.m_pad, n_pad = layer.geometry.n_pad;
  if (kind == StageKind::e8p) return {decoded_table(kind), unpack_e8p(layer.stages[stage], m_pad, n_pad)};
  const std::vector<uint8_t> narrow = unpack_e81b(layer.stages[stage], m_pad, n_pad);
  return {decoded_table(kind), std::vector<uint16_t>(narrow.begin(), narrow.end())};
}

// A pairwise sum keeps the dependency chain on the running accumulator one add long.
template <typename Acc>
Acc dot8(const float* w, const Acc* u) {
  const Acc p0 = Acc(w[0]) * u[0] + Acc(w[1]) * u[1], p1 = Acc(w[2]) * u[2] + Acc(w[3]) * u[3];
  const Acc p2 = Acc(w[4]) * u[4] + Acc(w[5]) * u[5], p3 = Acc(w[6]) * u[6] + Acc(w[7]) * u[7];
  return (p0 + p1) + (p2 + p3);
}

// Runs rows(begin, end) over contiguous row ranges on a few threads; each row is computed by
// one thread from start to end, so the split never changes a result.
template <typename Rows>
void parallel_rows(int64_t row_count, int64_t work, const Rows& rows) {
  const int64_t threads = std::min<int64_t>(
      {int64_t(std::max(1u, std::thread::hardware_concurrency())), row_count / 16, 1 + work / (int64_t(1) << 22)});
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(rows, row_count * t / threads, row_count * (t + 1) / threads);
  rows(int64_t(0), row_count / threads);
  for (std::thread& thread : pool) thread.join();
}

// sums[(s * batch + b) * m_pad + row] = (D_s u_b)[row], accumulated in Acc in column order.
// Stages are unpacked one at a time, so besides the layer only one stage's codes are held.
template <typename Acc>
std::vector<Acc> stage_products(const QuantizedLayer& layer, const std::vector<Acc>& u, int batch) {
  const int64_t m_pad = layer.geometry.m_pad, n_pad = layer.geometry.n_pad, groups = n_pad / 8;
  std::vector<Acc> sums(layer.stages.size() * size_t(batch) * size_t(m_pad));
  for (size_t s = 0; s < layer.stages.size(); ++s) {
    const StageCodes stage = stage_codes(layer, s);
    Acc* stage_sums = sums.data() + s * size_t(batch) * size_t(m_pad);
    parallel_rows(m_pad, m_pad * n_pad * batch, [&](int64_t row_begin, int64_t row_end) {
      std::vector<Acc> acc(static_cast<size_t>(batch));
      for (int64_t row = row_begin; row < row_end; ++row) {
        std::fill(acc.begin(), acc.end(), Acc(0));
        const uint16_t* codes = stage.codes.data() + row * groups;
        for (int64_t g = 0; g < groups; ++g) {
          const float* w = stage.table + size_t(codes[g]) * 8;  // decoded once, reused for the batch
          for (int b = 0; b < batch; ++b) acc[size_t(b)] += dot8(w, u.data() + size_t(b * n_pad + g * 8));
        }
        for (int b = 0; b < batch; ++b) stage_sums[size_t(b * m_pad + row)] = acc[size_t(b)];
      }
    });
  }
  return sums;
}

void check_input(const QuantizedLayer& layer, size_t x_size, int batch) {
  validate_layer(layer);
  if (batch < 1) {
    throw Error(Status::invalid_argument,
                "batch " + std::to_string(batch) + " is not positive; pass at least one row of x");
  }
  const int64_t expected = int64_t(batch) * layer.geometry.in_features;
  if (int64_t(x_size) != expected) {
    throw Error(Status::invalid_argument,
                "x has " + std::to_string(x_size) + " values but batch " + std::to_string(batch) + " x in_features " +
                    std::to_string(layer.geometry.in_features) + " needs " + std::to_string(expected));
  }
}

// SV * x_pad, then H_n, one batch row after another.
template <typename T, typename In>
std::vector<T> input_transform(const QuantizedLayer& layer, std::span<const In> x, int batch) {
  const int64_t n = layer.geometry.in_features, n_pad = layer.geometry.n_pad;
  std::vector<T> u(size_t(batch) * size_t(n_pad), T(0));
  for (int b = 0; b < batch; ++b) {
    const std::span<T> ub(u.data() + size_t(b) * size_t(n_pad), size_t(n_pad));
    for (int64_t j = 0; j < n; ++j)
      ub[size_t(j)] = T(x[size_t(b * n + j)]) * T(bits_to_float(DType::f16, layer.sv[size_t(j)]));
    hadamard_inplace(ub, layer.geometry.in_blocks);
  }
  return u;
}

// H_m z, then SU and bias on the first out_features rows; `finish` is the last rounding.
template <typename T, typename Finish>
auto output_transform(const QuantizedLayer& layer, std::vector<T>& z, int batch, Finish finish) {
  const int64_t m = layer.geometry.out_features, m_pad = layer.geometry.m_pad;
  std::vector<T> y(size_t(batch) * size_t(m));
  for (int b = 0; b < batch; ++b) {
    const std::span<T> zb(z.data() + size_t(b) * size_t(m_pad), size_t(m_pad));
    hadamard_inplace(zb, layer.geometry.out_blocks);
    for (int64_t i = 0; i < m; ++i) {
      T value = T(bits_to_float(DType::f16, layer.su[size_t(i)])) * zb[size_t(i)];
      if (!layer.bias.empty()) value += T(layer.bias[size_t(i)]);
      y[size_t(b * m + i)] = finish(value);
    }
  }
  return y;
}

// z = Wscale * sum_s c_s * (D_s u), in T; products holds the D_s u of stage_products.
template <typename T>
std::vector<T> combine_stages(const QuantizedLayer& layer, const std::vector<T>& products, int batch) {
  const size_t per_stage = size_t(batch) * size_t(layer.geometry.m_pad);
  std::vector<T> z(products.begin(), products.begin() + std::ptrdiff_t(per_stage));
  for (size_t s = 1; s < layer.stages.size(); ++s) {
    const T scale = T(layer.inv_resid_scales[s - 1]);
    for (size_t k = 0; k < per_stage; ++k) z[k] += scale * products[s * per_stage + k];
  }
  for (T& value : z) value *= T(layer.wscale);
  return z;
}

template <typename Got>
double relative_error(std::span<const Got> got, std::span<const double> ref) {
  if (got.size() != ref.size()) {
    throw Error(Status::invalid_argument, "relative_l2_error got " + std::to_string(got.size()) + " values and " +
                                              std::to_string(ref.size()) +
                                              " reference values; compare equal-size outputs");
  }
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    // A comparison must never pass on a NaN or an infinity, whichever side holds it.
    if (!std::isfinite(double(got[i])) || !std::isfinite(ref[i])) return std::numeric_limits<double>::infinity();
    diff += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    norm += ref[i] * ref[i];
  }
  if (diff == 0.0) return 0.0;
  return norm == 0.0 ? std::numeric_limits<double>::infinity() : std::sqrt(diff / norm);
}

}  // namespace

std::vector<double> decode_stage(const QuantizedLayer& layer, int stage) {
  validate_layer(layer);
  if (stage < 0 || stage >= int(layer.stages.size())) {
    throw Error(Status::invalid_argument, "stage " + std::to_string(stage) + " does not exist: this bpw " +
                                              std::to_string(layer.recipe.bpw) + " layer has stages 0.." +
                                              std::to_string(layer.stages.size() - 1));
  }
  const int64_t m_pad = layer.geometry.m_pad, n_pad = layer.geometry.n_pad;
  const StageCodes codes = stage_codes(layer, size_t(stage));
  std::vector<double> dense(size_t(m_pad * n_pad));
  for (size_t k = 0; k < codes.codes.size(); ++k) {
    std::copy_n(codes.table + size_t(codes.codes[k]) * 8, 8, dense.begin() + std::ptrdiff_t(k * 8));
  }
  return dense;
}

std::vector<double> reference_forward_fp64(const QuantizedLayer& layer, std::span<const double> x, int batch) {
  check_input(layer, x.size(), batch);
  const std::vector<double> u = input_transform<double>(layer, x, batch);
  std::vector<double> z = combine_stages(layer, stage_products(layer, u, batch), batch);
  return output_transform(layer, z, batch, [](double value) { return value; });
}

std::vector<float> reference_forward_numerics(const QuantizedLayer& layer, std::span<const float> x, int batch,
                                              DType dtype) {
  check_input(layer, x.size(), batch);
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isnan(x[i]) && round_to(dtype, x[i]) != x[i]) {
      throw Error(Status::invalid_argument, "x[" + std::to_string(i) + "] = " + std::to_string(x[i]) +
                                                " is not representable in " + std::string(dtype_name(dtype)) +
                                                "; round inputs with round_to() first");
    }
  }
  std::vector<float> u = input_transform<float>(layer, x, batch);
  for (float& value : u) value = round_to(DType::f16, value);
  std::vector<float> z = combine_stages(layer, stage_products(layer, u, batch), batch);
  return output_transform(layer, z, batch, [dtype](float value) { return round_to(dtype, value); });
}

double relative_l2_error(std::span<const double> got, std::span<const double> ref) { return relative_error(got, ref); }
double relative_l2_error(std::span<const float> got, std::span<const double> ref) { return relative_error(got, ref); }

}  // namespace glqjit
