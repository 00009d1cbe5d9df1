// Errors are values: fallible functions return Result<T>, which holds either a T or an Error.
// An Error is an std::error_code (each module defines its own `enum class Errc` and category)
// plus a human-readable message. Errors become protocol text (RESP "-ERR ...", HTTP problem JSON)
// only at the edge.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace shoal {

class Error {
 public:
  Error(std::error_code code, std::string message) : code_(code), message_(std::move(message)) {}
  template <typename E, typename = std::enable_if_t<std::is_error_code_enum_v<E>>>
  Error(E e, std::string message) : Error(make_error_code(e), std::move(message)) {}

  const std::error_code& code() const { return code_; }
  const std::string& message() const { return message_; }
  // "category: message" for logs.
  std::string ToString() const { return std::string(code_.category().name()) + ": " + message_; }

 private:
  std::error_code code_;
  std::string message_;
};

// A Result<T> never holds both. Access to the wrong alternative is a programming error (asserted).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void>.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status Ok() { return Status(); }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_{std::error_code(), std::string()};
  bool ok_ = true;
};

// Declares `make_error_code` for a module's error enum `Enum`; the module's .cc defines
// `const std::error_category& EnumCategory()` with SHOAL_ERROR_CATEGORY_DEFINE. Also specialise
// std::is_error_code_enum.
#define SHOAL_ERROR_CATEGORY_DECL(Enum)        \
  const std::error_category& Enum##Category(); \
  inline std::error_code make_error_code(Enum e) { return {static_cast<int>(e), Enum##Category()}; }

// The one std::error_category implementation: a name and a function that describes each code
// of `Enum` (a code outside the enum is "unknown error" however the function answers).
template <typename Enum>
class EnumErrorCategory final : public std::error_category {
 public:
  using Describe = std::string_view (*)(Enum);
  constexpr EnumErrorCategory(const char* name, Describe describe)
      : name_(name), describe_(describe) {}
  const char* name() const noexcept override { return name_; }
  std::string message(int code) const override {
    const std::string_view m = describe_(static_cast<Enum>(code));
    return m.empty() ? std::string("unknown error") : std::string(m);
  }

 private:
  const char* name_;
  Describe describe_;
};

// Defines `Enum##Category()` (declared by SHOAL_ERROR_CATEGORY_DECL) in the enclosing namespace:
// `name` is the category's name, `describe` a `std::string_view (*)(Enum)` that returns "" for
// a code it does not know.
#define SHOAL_ERROR_CATEGORY_DEFINE(Enum, name, describe)                       \
  const std::error_category& Enum##Category() {                                 \
    static const ::shoal::EnumErrorCategory<Enum> category((name), (describe)); \
    return category;                                                            \
  }

}  // namespace shoal
