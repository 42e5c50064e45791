/// \file
/// Sanity check of the Fashion-MNIST MLP: plain minibatch SGD (learning rate 0.1, no momentum, batch 64) on one
/// thread for 2 epochs, printing the test accuracy and time after each epoch.
///
/// Usage: fmnist_sgd_check [data_dir]   (default: $TETHER_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist)

#include "idx.hpp"
#include "mlp.hpp"
#include "shard.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  try {
    constexpr std::size_t epochs = 2;
    constexpr std::size_t batch_size = 64;
    constexpr float learning_rate = 0.1F;
    constexpr std::uint64_t seed = 42;

    fmnist::blas_single_thread();
    const std::string dir = argc > 1 ? std::string(argv[1]) : fmnist::default_directory();
    using clock = std::chrono::steady_clock;
    const auto t_load = clock::now();
    const fmnist::dataset train = fmnist::load_fashion_mnist(dir, fmnist::split::train);
    const fmnist::dataset test = fmnist::load_fashion_mnist(dir, fmnist::split::test, fmnist::all_samples, train.norm);
    std::printf("loaded %zu train + %zu test samples from %s in %.2f s (mean %.4f, std %.4f)\n", train.count,
                test.count, dir.c_str(), std::chrono::duration<double>(clock::now() - t_load).count(),
                train.norm.mean, train.norm.stddev);

    fmnist::mlp model(train);
    std::vector<float> x(model.dimension());
    std::vector<float> g(model.dimension());
    model.init(x, seed);
    fmnist::mlp evaluator(test);
    std::printf("epoch 0: test accuracy %.4f\n", evaluator.accuracy(x, test));

    fmnist::shard data(train.count, 0, 1, batch_size, seed);
    for (std::size_t e = 0; e < epochs; ++e) {
      const auto t0 = clock::now();
      double loss_sum = 0.0;
      std::size_t steps = 0;
      for (const std::span<const std::size_t> idx : data.epoch(e)) {
        loss_sum += model.evaluate(x, g, tether::batch{idx, data.batch_seed(e, steps)});
        for (std::size_t i = 0; i < x.size(); ++i) x[i] -= learning_rate * g[i];
        ++steps;
      }
      const double train_s = std::chrono::duration<double>(clock::now() - t0).count();
      const auto t1 = clock::now();
      const double acc = evaluator.accuracy(x, test);
      const double eval_s = std::chrono::duration<double>(clock::now() - t1).count();
      std::printf("epoch %zu: %zu steps, mean train loss %.4f, test accuracy %.4f, train %.2f s, eval %.2f s\n", e + 1,
                  steps, loss_sum / static_cast<double>(steps), acc, train_s, eval_s);
    }
    return 0;
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "fmnist_sgd_check: %s\n", ex.what());
    return 1;
  }
}
