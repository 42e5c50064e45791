// A plain scalar reference of the codecs' wire format and arithmetic, written from docs/codecs.md: header
// bytes by hand, scales per block, levels by the spec's formulas, bits packed by a bit writer. The tests
// compare the library with it bit for bit.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace codec_ref {

inline std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Wellons' lowbias32, as docs/codecs.md#randomness gives it.
inline std::uint32_t lowbias32(std::uint32_t x) {
  x = (x ^ (x >> 16)) * 0x7FEB352Du;
  x = (x ^ (x >> 15)) * 0x846CA68Bu;
  return x ^ (x >> 16);
}

/// The uniform of element i for seed: docs/codecs.md#randomness.
template <class T>
T uniform(std::uint64_t seed, std::size_t i) {
  const std::uint64_t key = mix(seed ^ 0x6A09E667F3BCC909ull);
  const auto k0 = static_cast<std::uint32_t>(key & 0xFFFFFFFFu);
  const auto k1 = static_cast<std::uint32_t>((key >> 32) + (std::uint64_t(i) >> 32) * 0x9E3779B9u);
  const std::uint32_t r = lowbias32(lowbias32(static_cast<std::uint32_t>(std::uint64_t(i) + k0)) ^ k1);
  if (sizeof(T) == 4) return T(r >> 8) / T(16777216.0);
  return T(r) / T(4294967296.0);
}

/// Smallest float >= v, largest float <= v.
template <class T>
float up(T v) {
  float f = static_cast<float>(v);
  if (T(f) < v) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}
template <class T>
float down(T v) {
  float f = static_cast<float>(v);
  if (T(f) > v) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

/// True when lo + w >= mx exactly: s = lo + w rounded, e its rounding error (Knuth's TwoSum, exact), and
/// lo + w = s + e; s > mx already covers (|e| is at most half the gap below s), s == mx covers when e >= 0.
inline bool covers(double lo, double w, double mx) {
  const double s = lo + w;
  const double bv = s - lo;
  const double e = (lo - (s - bv)) + (w - bv);
  return s > mx || (s == mx && e >= 0);
}

/// The smallest float w with lo + w >= mx (the spec of min_max's range), by search upward from the float
/// nearest mx - lo; infinity when none is finite.
inline float smallest_cover(float lo, double mx) {
  float w = up(mx - double(lo));
  while (std::isfinite(w) && !covers(double(lo), double(w), mx)) w = std::nextafter(w, std::numeric_limits<float>::infinity());
  return w;
}

struct bit_writer {
  std::vector<unsigned char> bytes;
  std::size_t bit = 0;
  void put(unsigned q, unsigned b) {
    for (unsigned t = 0; t < b; ++t, ++bit) {
      if (bit / 8 >= bytes.size()) bytes.push_back(0);
      if ((q >> t) & 1u) bytes[bit / 8] |= static_cast<unsigned char>(1u << (bit % 8));
    }
  }
  void align() { bit = bytes.size() * 8; }
};

inline void put_le(std::vector<unsigned char>& m, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) m.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
inline void put_float(std::vector<unsigned char>& m, float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  put_le(m, u, 4);
}

inline std::vector<unsigned char> header(unsigned kind, unsigned vt, unsigned bits, std::uint32_t block,
                                         std::uint64_t n) {
  std::vector<unsigned char> m{'T',
                               'C',
                               'O',
                               'D',
                               1,
                               static_cast<unsigned char>(kind),
                               static_cast<unsigned char>(vt),
                               static_cast<unsigned char>(bits)};
  put_le(m, block, 4);
  put_le(m, n, 8);
  return m;
}

enum class mode { max_abs, min_max, lattice };

/// docs/codecs.md, fp32 values: a nonzero scale (max_abs s, min_max w) below 2^-118 is raised to 2^-118; a
/// grid wider or higher than 2^128 * (1 - 2^-20) (max_abs: s above half that) gets a NaN scale.
constexpr double floor_fp32 = 0x1p-118;
constexpr double top_fp32 = 0x1p128 * (1.0 - 0x1p-20);

template <class T>
float raised(float v) {
  return sizeof(T) == 4 && v != 0.0f && double(v) < floor_fp32 ? float(floor_fp32) : v;
}

/// A quantizing codec's message, and the values its decoder returns (lattice: next to the reference).
template <class T>
struct result {
  std::vector<unsigned char> msg;
  std::vector<T> decoded;
  std::vector<long long> levels;  ///< stochastic levels (lattice: k, before mod 2^b)
  std::vector<T> delta;           ///< per element: grid spacing (lattice: s)
};

template <class T>
result<T> encode(mode md, const std::vector<T>& x, unsigned b, std::size_t B, std::uint64_t seed,
                 float step = 0, const std::vector<T>* reference = nullptr) {
  const std::size_t n = x.size();
  const unsigned kind = md == mode::max_abs ? 2 : md == mode::min_max ? 3 : 4;
  result<T> r;
  r.msg = header(kind, sizeof(T) == 4 ? 1 : 2, b, static_cast<std::uint32_t>(B), n);
  const double L = std::pow(2.0, b) - 1;
  const double M = std::pow(2.0, b);
  bit_writer w;
  std::vector<unsigned char> scales;
  r.decoded.resize(n);
  for (std::size_t base = 0; base < n; base += B) {
    const std::size_t end = std::min(n, base + B);
    T lo = 0, delta = 0, inv = 0;
    if (md == mode::max_abs) {
      T m = 0;
      for (std::size_t i = base; i < end; ++i) m = std::max(m, std::abs(x[i]));
      float s = raised<T>(up(m));
      if (sizeof(T) == 4 && 2.0 * double(s) > top_fp32) s = std::numeric_limits<float>::quiet_NaN();
      put_float(scales, s);
      if (s > 0) {
        lo = -T(s);
        inv = T(L) / (T(s) + T(s));
        delta = (T(s) + T(s)) / T(L);
      }
    } else if (md == mode::min_max) {
      T mn = x[base], mx = x[base];
      for (std::size_t i = base; i < end; ++i) mn = std::min(mn, x[i]), mx = std::max(mx, x[i]);
      if (mn == 0) mn = 0;  // the spec: a zero minimum or maximum is +0
      if (mx == 0) mx = 0;
      float flo = down(mn);
      float fw = raised<T>(smallest_cover(flo, double(mx)));
      const double top = sizeof(T) == 4 ? top_fp32 : double(std::numeric_limits<float>::max());
      if (double(fw) > top || (sizeof(T) == 4 && double(flo) + double(fw) > top))
        flo = fw = std::numeric_limits<float>::quiet_NaN();
      put_float(scales, flo);
      put_float(scales, fw);
      lo = T(flo);
      delta = T(fw) / T(L);
      inv = fw > 0 ? T(L) / T(fw) : T(0);
    } else {  // NaN when some |x/s| reaches 2^23 (float) / 2^52 (double): nothing left to round there
      const double limit = sizeof(T) == 4 ? 8388608.0 : 4503599627370496.0;
      bool ok = true;
      for (std::size_t i = base; i < end; ++i) ok = ok && std::abs(double(x[i] * (T(1) / T(step)))) < limit;
      put_float(scales, ok ? step : std::numeric_limits<float>::quiet_NaN());
    }
    for (std::size_t i = base; i < end; ++i) {
      const T rnd = uniform<T>(seed, i);
      if (md != mode::lattice) {
        T u = (x[i] - lo) * inv;
        u = std::clamp(u, T(0), T(L));
        const T f = std::floor(u);
        const long long q = static_cast<long long>(f) + (rnd < u - f ? 1 : 0);
        r.levels.push_back(q);
        r.delta.push_back(delta);
        w.put(static_cast<unsigned>(q), b);
        r.decoded[i] = lo + T(q) * delta;
      } else {
        const T s = T(step);
        const T u = x[i] * (T(1) / s);  // the reciprocal, rounded, as the spec says
        const T f = std::floor(u);
        const long long k = static_cast<long long>(f) + (rnd < u - f ? 1 : 0);
        r.levels.push_back(k);
        r.delta.push_back(s);
        const long long q = ((k % (long long)M) + (long long)M) % (long long)M;
        w.put(static_cast<unsigned>(q), b);
        // nearest k' = q (mod M) to y/s, found by search
        const T ys = (*reference)[i] * (T(1) / s);
        long long best = q + (long long)M * (long long)std::floor((ys - T(q)) / T(M));
        if (std::abs(T(best + (long long)M) - ys) < std::abs(T(best) - ys)) best += (long long)M;
        r.decoded[i] = T(best) * s;
      }
    }
    w.align();
  }
  r.msg.insert(r.msg.end(), scales.begin(), scales.end());
  r.msg.insert(r.msg.end(), w.bytes.begin(), w.bytes.end());
  return r;
}

}  // namespace codec_ref
