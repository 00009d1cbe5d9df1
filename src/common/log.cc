#include "common/log.h"

namespace shoal::log {

void SetLevel(std::string_view level) {
  spdlog::level::level_enum l = spdlog::level::info;
  if (level == "debug" || level == "verbose") l = spdlog::level::debug;
  if (level == "warning" || level == "notice" || level == "warn") l = spdlog::level::warn;
  if (level == "error") l = spdlog::level::err;
  spdlog::set_level(l);
}

void Init(std::string_view level) {
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%t] %v");
  SetLevel(level);
}

}  // namespace shoal::log
