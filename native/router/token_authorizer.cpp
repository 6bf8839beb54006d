#include "token_authorizer.hpp"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "hyperstreams/errc.hpp"

namespace hyperstreams::router {
namespace {

std::error_code code(errc e) { return make_error_code(e); }

}  // namespace

token_authorizer::token_authorizer(token_policy policy) : policy_(std::move(policy)) {
    if (!policy_.unix_now) {
        policy_.unix_now = [] {
            return std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                .count();
        };
    }
}

verdict token_authorizer::check(std::string_view token, session& out) {
    if (token.size() > policy_.max_token_bytes) {
        return verdict::refuse(errc::unauthorized, "the token is " + std::to_string(token.size()) +
                                                       " bytes; auth.max_token_bytes is " +
                                                       std::to_string(policy_.max_token_bytes));
    }
    const jwt::verifier::result r = policy_.keys.verify(token, policy_.unix_now(), policy_.leeway_s);
    if (r.why != jwt::failure::none) {
        return verdict::refuse(r.why == jwt::failure::expired ? errc::token_expired : errc::unauthorized,
                               jwt::describe(r));
    }
    const auto claims = nlohmann::json::parse(r.claims_json, nullptr, false);
    const auto sub = claims.find("sub");
    if (sub == claims.end() || !sub->is_string() || sub->get<std::string>().empty()) {
        return verdict::refuse(errc::unauthorized, "the token has no subject (sub)");
    }
    auto rights = std::make_shared<grants>();
    if (auto hs = claims.find("hs"); hs != claims.end()) {
        if (std::string err = parse_grants(*hs, *rights, policy_.max_rules); !err.empty()) {
            return verdict::refuse(errc::unauthorized, "the token's hs claim: " + err);
        }
    }
    out.subject = sub->get<std::string>();
    out.rights = std::move(rights);
    out.exp = r.exp;
    return {};
}

verdict token_authorizer::admit(const principal& who, std::string_view token) {
    session s;
    if (!who.curve_key.empty()) {
        // The CURVE handshake proved the key; its rights come from the configuration.
        const auto it = policy_.curve_clients.find(who.curve_key);
        if (it == policy_.curve_clients.end()) {
            return verdict::refuse(errc::unauthorized, "this CURVE key has no rights");
        }
        s.rights = it->second;
    } else if (token.empty()) {
        if (!policy_.anonymous) {
            return verdict::refuse(errc::unauthorized, "a token is required");
        }
        s.rights = policy_.anonymous;
    } else if (verdict v = check(token, s)) {
        return v;
    }
    if (!s.subject.empty() && policy_.connections_per_subject != 0) {
        auto it = per_subject_.find(s.subject);
        if (it != per_subject_.end() && it->second >= policy_.connections_per_subject) {
            return verdict::refuse(errc::too_many_connections, "this subject has too many connections");
        }
    }
    if (!s.subject.empty()) ++per_subject_[s.subject];
    sessions_.insert_or_assign(who.connection, std::move(s));
    return {};
}

verdict token_authorizer::refresh(const principal& who, std::string_view token) {
    auto it = sessions_.find(who.connection);
    if (it == sessions_.end()) {
        return verdict::refuse(errc::unauthorized, "not admitted");
    }
    session fresh;
    if (verdict v = check(token, fresh)) return v;
    session& current = it->second;
    if (!current.subject.empty() && current.subject != fresh.subject) {
        return verdict::refuse(errc::forbidden, "a refreshed token must keep the subject");
    }
    if (current.subject.empty()) {
        if (policy_.connections_per_subject != 0) {
            auto n = per_subject_.find(fresh.subject);
            if (n != per_subject_.end() && n->second >= policy_.connections_per_subject) {
                return verdict::refuse(errc::too_many_connections, "this subject has too many connections");
            }
        }
        ++per_subject_[fresh.subject];
    }
    current = std::move(fresh);
    return {};
}

void token_authorizer::forget(const principal& who) {
    auto it = sessions_.find(who.connection);
    if (it == sessions_.end()) return;
    if (!it->second.subject.empty()) {
        auto n = per_subject_.find(it->second.subject);
        if (n != per_subject_.end() && --n->second == 0) per_subject_.erase(n);
    }
    sessions_.erase(it);
}

std::string_view token_authorizer::subject(const principal& who) {
    auto it = sessions_.find(who.connection);
    return it == sessions_.end() ? std::string_view() : std::string_view(it->second.subject);
}

std::span<const std::string> token_authorizer::channels(const principal& who) {
    const session* s = find(who);
    return s == nullptr ? std::span<const std::string>() : std::span<const std::string>(s->rights->channels);
}

std::optional<std::chrono::milliseconds> token_authorizer::token_lifetime(const principal& who) {
    const session* s = find(who);
    if (s == nullptr || s->exp == 0) return std::nullopt;
    const std::int64_t now = policy_.unix_now();
    if (s->exp <= now) return std::chrono::milliseconds(0);
    // Unsigned: exp - now does not fit a signed integer when exp is near 2^63
    // and now before 1970.
    const std::uint64_t left = static_cast<std::uint64_t>(s->exp) - static_cast<std::uint64_t>(now);
    const auto longest = static_cast<std::uint64_t>(longest_token_lifetime.count());
    return std::chrono::seconds(static_cast<std::int64_t>(std::min(left, longest)));
}

const token_authorizer::session* token_authorizer::find(const principal& who) const {
    auto it = sessions_.find(who.connection);
    return it == sessions_.end() ? nullptr : &it->second;
}

std::error_code token_authorizer::decide(const principal&, bool allowed) {
    return allowed ? std::error_code{} : code(errc::forbidden);
}

std::error_code token_authorizer::can_subscribe(const principal& who, std::string_view pattern) {
    const session* s = find(who);
    return decide(who, s && s->rights->may_subscribe(pattern));
}

std::error_code token_authorizer::can_publish(const principal& who, std::string_view channel) {
    const session* s = find(who);
    return decide(who, s && s->rights->may_publish(channel));
}

std::error_code token_authorizer::can_call(const principal& who, std::string_view service,
                                           std::string_view method) {
    const session* s = find(who);
    return decide(who, s && s->rights->may_call(service, method));
}

std::error_code token_authorizer::can_send(const principal& who, std::string_view address) {
    const session* s = find(who);
    return decide(who, s && s->rights->may_send(address));
}

std::error_code token_authorizer::can_broadcast(const principal& who) {
    const session* s = find(who);
    return decide(who, s && s->rights->may_broadcast());
}

std::error_code token_authorizer::can_register(const principal& who, std::string_view service) {
    const session* s = find(who);
    return decide(who, s && s->rights->may_register(service));
}

std::error_code token_authorizer::can_subscribe_clients(const principal& who, std::string_view pattern) {
    const session* s = find(who);
    return decide(who, s && s->rights->may_subscribe_clients(pattern));
}

}  // namespace hyperstreams::router

namespace hyperstreams::router {

std::unique_ptr<authorizer> make_authorizer(const router_config& cfg, std::string& error) {
    if (cfg.auth == auth_mode::open) return std::make_unique<allow_all>();
    token_policy policy;
    policy.connections_per_subject = cfg.connections_per_subject;
    policy.leeway_s = cfg.auth_leeway_s;
    policy.max_token_bytes = cfg.auth_max_token_bytes;
    policy.max_rules = cfg.auth_max_rules;
    std::string secret = cfg.auth_hs256_secret;
    if (!cfg.auth_hs256_secret_file.empty()) {
        if (!read_secret_file(cfg.auth_hs256_secret_file, secret)) {
            error = "auth.hs256_secret_file: cannot read '" + cfg.auth_hs256_secret_file + "'";
            return nullptr;
        }
    }
    if (!secret.empty() && secret.size() < 32) {
        error = "auth.hs256_secret: at least 32 bytes (HS256 keys shorter than the hash are weak)";
        return nullptr;
    }
    policy.keys.set_hs256_secret(std::move(secret));
    if (!cfg.auth_public_key_file.empty()) {
        std::string pem;
        if (!read_secret_file(cfg.auth_public_key_file, pem)) {
            error = "auth.public_key_file: cannot read '" + cfg.auth_public_key_file + "'";
            return nullptr;
        }
        if (std::string err = policy.keys.set_public_key_pem(pem); !err.empty()) {
            error = "auth.public_key_file: " + err;
            return nullptr;
        }
    }
    if (cfg.auth_anonymous) policy.anonymous = cfg.auth_anonymous->rights;
    if (cfg.curve_clients)
        for (const auto& [key, client] : *cfg.curve_clients) policy.curve_clients.emplace(key, client.rights);
    if (!policy.keys.has_keys() && !policy.anonymous && policy.curve_clients.empty()) {
        error = "auth.mode is tokens but no key (auth.hs256_secret[_file], auth.public_key_file) "
                "and no auth.anonymous rights are configured: nobody could connect";
        return nullptr;
    }
    return std::make_unique<token_authorizer>(std::move(policy));
}

}  // namespace hyperstreams::router
