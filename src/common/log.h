// Logging: a thin layer over spdlog so the rest of the code does not name it. Thread-safe.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace shoal::log {

enum class Level { kDebug, kInfo, kWarning, kError };

// Sets the process-wide level; "debug", "info" (default), "warning"/"notice", "error".
void SetLevel(std::string_view level);
void Init(std::string_view level);

}  // namespace shoal::log

#define SHOAL_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define SHOAL_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define SHOAL_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define SHOAL_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
