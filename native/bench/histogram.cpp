// Latency histogram: log-linear buckets, 64 per power of two.
#include <algorithm>

#include "bench.hpp"

namespace hyperstreams::bench {

void histogram::add(std::int64_t ns) noexcept {
    const auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
    std::size_t index;
    if (v < (std::uint64_t{1} << sub_bits)) {
        index = static_cast<std::size_t>(v);
    } else {
        const int top = 63 - __builtin_clzll(v);  // >= sub_bits
        const int shift = top - sub_bits;
        const auto mantissa = static_cast<std::size_t>((v >> shift) & ((std::uint64_t{1} << sub_bits) - 1));
        index = (static_cast<std::size_t>(shift + 1) << sub_bits) + mantissa;
    }
    ++counts_[std::min(index, counts_.size() - 1)];
    ++count_;
}

void histogram::merge(const histogram& other) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
}

double histogram::quantile_us(double q) const noexcept {
    if (count_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        seen += counts_[i];
        if (seen < rank) continue;
        const std::size_t row = i >> sub_bits;
        const std::uint64_t mantissa = i & ((std::size_t{1} << sub_bits) - 1);
        if (row == 0) return static_cast<double>(mantissa) / 1e3;
        const int shift = static_cast<int>(row) - 1;
        // the middle of the bucket
        const std::uint64_t low = ((std::uint64_t{1} << sub_bits) | mantissa) << shift;
        const double mid = static_cast<double>(low) + static_cast<double>(std::uint64_t{1} << shift) / 2.0;
        return mid / 1e3;
    }
    return 0;
}

}  // namespace hyperstreams::bench
