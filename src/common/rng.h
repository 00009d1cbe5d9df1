// Randomness as an interface. Protocol cores and the simulator take an Rng so that a run is
// reproducible from its seed. NOT thread-safe: each thread or state machine owns its own.
#pragma once

#include <cstdint>

namespace shoal {

class Rng {
 public:
  virtual ~Rng() = default;
  virtual uint64_t Next() = 0;

  // Uniform in [0, n). REQUIRES: n > 0. Lemire's multiply-shift; bias is negligible for our n.
  uint64_t Uniform(uint64_t n) { return static_cast<uint64_t>((__uint128_t{Next()} * n) >> 64); }
  // Uniform in [0, 1).
  double UniformDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Bernoulli(double p) { return UniformDouble() < p; }
};

// xoshiro256** seeded through splitmix64: fast, small state, good statistical quality.
class SeededRng final : public Rng {
 public:
  explicit SeededRng(uint64_t seed);
  uint64_t Next() override;

 private:
  uint64_t s_[4];
};

// Seeded from the OS entropy source; for production use.
class RandomRng final : public Rng {
 public:
  RandomRng();
  uint64_t Next() override { return inner_.Next(); }

 private:
  SeededRng inner_;
};

}  // namespace shoal
