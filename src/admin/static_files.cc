// StaticFiles and ContentTypeFor (admin_server.h).
#include <strings.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "admin/admin_server.h"

namespace shoal::admin {

std::string ContentTypeFor(std::string_view filename) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},
      {".woff", "font/woff"},
      {".wasm", "application/wasm"},
  };
  const size_t dot = filename.rfind('.');
  const size_t slash = filename.rfind('/');
  if (dot != std::string_view::npos && (slash == std::string_view::npos || dot > slash)) {
    const std::string_view ext = filename.substr(dot);
    for (const auto& [e, type] : kTypes) {
      if (ext.size() == strlen(e) && strncasecmp(ext.data(), e, ext.size()) == 0) return type;
    }
  }
  return "application/octet-stream";
}

namespace {

// True when `rel` (the request's path below the root) has no segment that could climb out.
bool SafeRelative(std::string_view rel) {
  if (rel.find('\\') != std::string_view::npos || rel.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t i = 0;
  while (i <= rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string_view::npos) j = rel.size();
    if (rel.substr(i, j - i) == "..") return false;
    i = j + 1;
  }
  return true;
}

}  // namespace

HttpHandler StaticFiles(std::string root) {
  namespace fs = std::filesystem;
  return [root = std::move(root)](const HttpRequest& req) {
    std::string rel = req.matches.size() > 1 ? req.matches[1] : "";
    if (!SafeRelative(rel)) return HttpReply::Problem(400, "bad file path " + req.path);
    if (rel.empty() || rel.back() == '/') rel += "index.html";
    while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
    std::error_code ec;
    const fs::path base = fs::weakly_canonical(fs::path(root), ec);
    if (ec) return HttpReply::Problem(404, "no file " + req.path);
    fs::path file = fs::weakly_canonical(base / rel, ec);
    if (!ec && fs::is_directory(file, ec)) file = fs::weakly_canonical(file / "index.html", ec);
    if (ec) return HttpReply::Problem(404, "no file " + req.path);
    // Symlinks resolved: the file must still be under the root.
    const std::string b = base.string(), f = file.string();
    if (f.size() <= b.size() || f.compare(0, b.size(), b) != 0 || f[b.size()] != '/') {
      return HttpReply::Problem(404, "no file " + req.path);
    }
    if (!fs::is_regular_file(file, ec)) return HttpReply::Problem(404, "no file " + req.path);
    std::ifstream in(file, std::ios::binary);
    if (!in) return HttpReply::Problem(404, "no file " + req.path);
    std::ostringstream data;
    data << in.rdbuf();
    return HttpReply::Bytes(data.str(), ContentTypeFor(f));
  };
}

}  // namespace shoal::admin
