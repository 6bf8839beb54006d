#include "idempotency.hpp"

#include <openssl/evp.h>

#include <cstdlib>
#include <memory>

namespace hyperstreams::router {

idempotency_keys::digest idempotency_keys::digest_of(std::uint8_t flags, bytes_view message) {
    digest d{};
    const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    // Out of memory only: an all-zero digest then makes every payload under a
    // key the same, which is the error the caller can least notice, so abort.
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), &flags, 1) != 1 ||
        EVP_DigestUpdate(ctx.get(), message.data(), message.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), d.data(), nullptr) != 1)
        std::abort();
    return d;
}

idempotency_keys::outcome idempotency_keys::check(std::string_view key, const digest& d, time_point now,
                                                  position& first) {
    forget_ended(now);
    auto it = by_key_.find(std::string(key));
    if (it == by_key_.end()) return outcome::fresh;
    if (it->second.d != d) return outcome::reused;
    first = it->second.at;
    return outcome::repeat;
}

void idempotency_keys::remember(std::string_view key, const digest& d, position at, time_point window_end) {
    while (by_key_.size() >= max_keys_) forget_oldest();
    by_key_.insert_or_assign(std::string(key), entry{at, d, window_end});
    order_.emplace_back(key);
}

void idempotency_keys::forget_ended(time_point now) {
    while (!order_.empty() && by_key_.at(order_.front()).window_end <= now) forget_oldest();
}

void idempotency_keys::forget_oldest() {
    by_key_.erase(order_.front());
    order_.pop_front();
}

}  // namespace hyperstreams::router
