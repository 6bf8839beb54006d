// The router's options, one table: each key's type, bounds, help text and
// how it reads and writes router_config. config.cpp reads flags and files
// through it, prints --help and --print-config from it. Internal to the
// configuration.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

namespace hyperstreams::router::config_detail {

using json = nlohmann::json;

// json_value: a JSON value (a flag gives it as JSON text) that the option's
// own parse() checks and stores; list: an array of strings (a flag gives it
// comma-separated); boolean: true or false (a flag gives it as that word).
enum class option_type : std::uint8_t { text, integer, choice, json_value, list, boolean };

struct option {
    std::string_view key;
    std::string_view help;
    option_type type = option_type::text;
    std::uint64_t min = 0;
    std::uint64_t max = 0;
    std::vector<std::string_view> choices;
    std::function<json(const router_config&)> get;
    std::function<void(router_config&, const json&)> set;  // the value is checked already
    // json_value only: checks and stores the value; returns "" or what is wrong with it.
    std::function<std::string(router_config&, const json&)> parse;
};

// Every option, in the order --help lists them.
const std::vector<option>& options();

}  // namespace hyperstreams::router::config_detail
