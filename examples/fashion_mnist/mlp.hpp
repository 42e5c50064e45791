#pragma once
/// \file
/// A 784-256-128-10 multilayer perceptron (ReLU, softmax cross-entropy) on Fashion-MNIST, as a tether objective.
/// Forward and backward passes are OpenBLAS `cblas_sgemm` calls on minibatch matrices.

#include "idx.hpp"
#include "shard.hpp"

#include <tether/core/error.hpp>
#include <tether/core/objective.hpp>

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#ifndef OPENBLAS_VERSION
// A cblas.h other than OpenBLAS's lacks this declaration; the function comes from libopenblas.
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace fmnist {

/// Makes OpenBLAS run its kernels on the calling thread only. Each tether worker calls this before training:
/// the workers already occupy the cores, and OpenBLAS's own thread pool (one thread per core by default) would
/// oversubscribe them. The setting is process-wide, so calling it from every worker is harmless.
inline void blas_single_thread() { openblas_set_num_threads(1); }

/// The MLP 784 -> 256 -> ReLU -> 128 -> ReLU -> 10 -> softmax, with cross-entropy loss, over a dataset's samples.
///
/// All parameters live in ONE flat float vector x of `dimension()` = 235146 values, in this order (row-major
/// matrices, each row holding the weights into one output unit):
///
/// | block | offset | size            | meaning                                   |
/// |-------|--------|-----------------|-------------------------------------------|
/// | W1    | 0      | 256 x 784       | W1[j*784 + i]: input pixel i -> hidden1 j |
/// | b1    | 200704 | 256             | hidden1 biases                            |
/// | W2    | 200960 | 128 x 256       | W2[k*256 + j]: hidden1 j -> hidden2 k     |
/// | b2    | 233728 | 128             | hidden2 biases                            |
/// | W3    | 233856 | 10 x 128        | W3[c*128 + k]: hidden2 k -> logit c       |
/// | b3    | 235136 | 10              | logit biases                              |
///
/// The gradient has the same layout. The object keeps pointers to the dataset (which must outlive it) and its own
/// working buffers, grown on the first call for a given batch size and reused afterwards: give each worker its own
/// object, and call blas_single_thread() in each worker.
class mlp {
 public:
  static constexpr std::size_t inputs = image_size;  ///< 784
  static constexpr std::size_t hidden1 = 256;        ///< first hidden layer width
  static constexpr std::size_t hidden2 = 128;        ///< second hidden layer width
  static constexpr std::size_t outputs = classes;    ///< 10 logits

  static constexpr std::size_t w1_offset = 0;                            ///< offset of W1 in x
  static constexpr std::size_t b1_offset = w1_offset + hidden1 * inputs;  ///< offset of b1 in x
  static constexpr std::size_t w2_offset = b1_offset + hidden1;           ///< offset of W2 in x
  static constexpr std::size_t b2_offset = w2_offset + hidden2 * hidden1;  ///< offset of b2 in x
  static constexpr std::size_t w3_offset = b2_offset + hidden2;           ///< offset of W3 in x
  static constexpr std::size_t b3_offset = w3_offset + outputs * hidden2;  ///< offset of b3 in x
  static constexpr std::size_t parameter_count = b3_offset + outputs;     ///< 235146

  /// A model over the samples of `data` (kept by reference; must outlive the object). Throws tether::error unless
  /// `data` has 784 features per sample and consistent sizes.
  explicit mlp(const dataset& data) : data_(&data) {
    tether::detail::require(data.features == inputs, "fmnist::mlp: expected ", inputs, " features, got ",
                            data.features);
    tether::detail::require(data.images.size() == data.count * data.features && data.labels.size() == data.count,
                            "fmnist::mlp: dataset sizes disagree with count ", data.count);
  }

  /// Number of parameters (235146).
  [[nodiscard]] std::size_t dimension() const noexcept { return parameter_count; }

  /// Mean softmax cross-entropy over the samples `b.samples` at parameters `x`; writes the mean gradient into `g`
  /// (overwritten, not accumulated). Throws tether::error on wrong sizes, an empty batch or a sample index out of range.
  double evaluate(std::span<const float> x, std::span<float> g, const tether::batch& b) {
    check_parameters(x, "x");
    check_parameters(std::span<const float>(g.data(), g.size()), "g");
    const std::size_t n = b.samples.size();
    tether::detail::require(n > 0, "fmnist::mlp::evaluate: empty batch");
    reserve(n);
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t s = b.samples[k];
      tether::detail::require(s < data_->count, "fmnist::mlp::evaluate: sample ", s, " out of range (dataset has ",
                              data_->count, ")");
      std::copy_n(data_->images.data() + s * inputs, inputs, input_.data() + k * inputs);
    }
    forward(x, input_.data(), n);

    // Loss and d(loss)/d(logits) = (softmax - onehot) / n, in place of the logits.
    double loss = 0.0;
    const double inv_n = 1.0 / static_cast<double>(n);
    for (std::size_t k = 0; k < n; ++k) {
      float* z = logits_.data() + k * outputs;
      const std::size_t y = data_->labels[b.samples[k]];
      tether::detail::require(y < outputs, "fmnist::mlp::evaluate: label ", y, " of sample ", b.samples[k],
                              " out of range 0..", outputs - 1);
      const double m = *std::max_element(z, z + outputs);
      double sum = 0.0;
      for (std::size_t c = 0; c < outputs; ++c) sum += std::exp(static_cast<double>(z[c]) - m);
      loss += m + std::log(sum) - static_cast<double>(z[y]);
      for (std::size_t c = 0; c < outputs; ++c) {
        const double p = std::exp(static_cast<double>(z[c]) - m) / sum;
        z[c] = static_cast<float>((p - (c == y ? 1.0 : 0.0)) * inv_n);
      }
    }
    backward(x, g, n);
    return loss * inv_n;
  }

  /// He/Kaiming uniform initialization: weights of a layer with fan-in f uniform in [-sqrt(6/f), sqrt(6/f)],
  /// biases zero. Deterministic in `seed` on every platform.
  void init(std::span<float> x, std::uint64_t seed) const {
    check_parameters(std::span<const float>(x.data(), x.size()), "x");
    rng gen(mix_seed({seed, 0x6d6c70ULL /* "mlp" */}));
    const auto fill = [&](std::size_t offset, std::size_t count, std::size_t fan_in) {
      const float bound = std::sqrt(6.0F / static_cast<float>(fan_in));
      for (std::size_t i = 0; i < count; ++i) x[offset + i] = (2.0F * gen.uniform01() - 1.0F) * bound;
    };
    std::fill(x.begin(), x.end(), 0.0F);
    fill(w1_offset, hidden1 * inputs, inputs);
    fill(w2_offset, hidden2 * hidden1, hidden1);
    fill(w3_offset, outputs * hidden2, hidden2);
  }

  /// Fraction of the first `max_samples` samples of `d` (all by default) whose largest logit is the label,
  /// computed in chunks of 256 samples with sgemm. Returns 0 for an empty set.
  double accuracy(std::span<const float> x, const dataset& d, std::size_t max_samples = all_samples) {
    check_parameters(x, "x");
    tether::detail::require(d.features == inputs, "fmnist::mlp::accuracy: expected ", inputs, " features, got ",
                            d.features);
    const std::size_t total = std::min(max_samples, d.count);
    if (total == 0) return 0.0;
    constexpr std::size_t chunk = 256;
    reserve(std::min(total, chunk));
    std::size_t correct = 0;
    for (std::size_t start = 0; start < total; start += chunk) {
      const std::size_t n = std::min(chunk, total - start);
      forward(x, d.images.data() + start * inputs, n);
      for (std::size_t k = 0; k < n; ++k) {
        const float* z = logits_.data() + k * outputs;
        const auto predicted = static_cast<std::size_t>(std::max_element(z, z + outputs) - z);
        if (predicted == d.labels[start + k]) ++correct;
      }
    }
    return static_cast<double>(correct) / static_cast<double>(total);
  }

 private:
  static void check_parameters(std::span<const float> v, const char* name) {
    tether::detail::require(v.size() == parameter_count, "fmnist::mlp: ", name, " has ", v.size(),
                            " values, expected ", parameter_count);
  }

  static int to_int(std::size_t v) { return static_cast<int>(v); }

  /// Grows the buffers to hold `n` samples (no allocation when they already can).
  void reserve(std::size_t n) {
    if (n <= capacity_) return;
    input_.resize(n * inputs);
    act1_.resize(n * hidden1);
    act2_.resize(n * hidden2);
    logits_.resize(n * outputs);
    delta1_.resize(n * hidden1);
    delta2_.resize(n * hidden2);
    capacity_ = n;
  }

  /// out (n x m) = relu?(in (n x k) * W^T + bias), W being m x k row-major.
  static void dense(const float* in, std::size_t n, std::size_t k, const float* w, const float* bias,
                    std::size_t m, float* out, bool relu) {
    for (std::size_t r = 0; r < n; ++r) std::copy_n(bias, m, out + r * m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, to_int(n), to_int(m), to_int(k), 1.0F, in, to_int(k), w,
                to_int(k), 1.0F, out, to_int(m));
    if (relu) {
      for (std::size_t i = 0; i < n * m; ++i) out[i] = std::max(out[i], 0.0F);
    }
  }

  /// Forward pass of `n` samples (rows of `in`): activations into act1_, act2_ and logits into logits_.
  void forward(std::span<const float> x, const float* in, std::size_t n) {
    const float* p = x.data();
    dense(in, n, inputs, p + w1_offset, p + b1_offset, hidden1, act1_.data(), true);
    dense(act1_.data(), n, hidden1, p + w2_offset, p + b2_offset, hidden2, act2_.data(), true);
    dense(act2_.data(), n, hidden2, p + w3_offset, p + b3_offset, outputs, logits_.data(), false);
  }

  /// Gradient of one dense layer given delta (n x m) of its outputs and its input (n x k):
  /// gW (m x k) = delta^T in, gb = column sums of delta.
  static void dense_gradient(const float* delta, const float* in, std::size_t n, std::size_t k, std::size_t m,
                             float* gw, float* gb) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, to_int(m), to_int(k), to_int(n), 1.0F, delta, to_int(m), in,
                to_int(k), 0.0F, gw, to_int(k));
    std::fill_n(gb, m, 0.0F);
    for (std::size_t r = 0; r < n; ++r) {
      for (std::size_t j = 0; j < m; ++j) gb[j] += delta[r * m + j];
    }
  }

  /// delta_in (n x k) = (delta (n x m) * W (m x k)) masked by the ReLU of the layer below (act > 0).
  static void backpropagate(const float* delta, std::size_t n, std::size_t m, const float* w, std::size_t k,
                            const float* act, float* delta_in) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, to_int(n), to_int(k), to_int(m), 1.0F, delta, to_int(m), w,
                to_int(k), 0.0F, delta_in, to_int(k));
    for (std::size_t i = 0; i < n * k; ++i) {
      if (!(act[i] > 0.0F)) delta_in[i] = 0.0F;
    }
  }

  /// Backward pass of `n` samples; logits_ holds d(loss)/d(logits), input_ the inputs of the batch.
  void backward(std::span<const float> x, std::span<float> g, std::size_t n) {
    const float* p = x.data();
    float* q = g.data();
    dense_gradient(logits_.data(), act2_.data(), n, hidden2, outputs, q + w3_offset, q + b3_offset);
    backpropagate(logits_.data(), n, outputs, p + w3_offset, hidden2, act2_.data(), delta2_.data());
    dense_gradient(delta2_.data(), act1_.data(), n, hidden1, hidden2, q + w2_offset, q + b2_offset);
    backpropagate(delta2_.data(), n, hidden2, p + w2_offset, hidden1, act1_.data(), delta1_.data());
    dense_gradient(delta1_.data(), input_.data(), n, inputs, hidden1, q + w1_offset, q + b1_offset);
  }

  const dataset* data_;
  std::size_t capacity_ = 0;
  std::vector<float> input_;   // n x 784 gathered samples
  std::vector<float> act1_;    // n x 256 ReLU outputs of layer 1
  std::vector<float> act2_;    // n x 128 ReLU outputs of layer 2
  std::vector<float> logits_;  // n x 10 logits, then d(loss)/d(logits)
  std::vector<float> delta1_;  // n x 256 d(loss)/d(pre-activation 1)
  std::vector<float> delta2_;  // n x 128 d(loss)/d(pre-activation 2)
};

static_assert(tether::objective<mlp>);

}  // namespace fmnist
