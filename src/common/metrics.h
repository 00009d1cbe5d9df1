// Metrics: one registry of counters, gauges and histograms with labels, rendered as Prometheus
// text (exposition format 0.0.4), as JSON, or read one by one (INFO).
//
// DESIGN
//  - A metric family has a name, a help line, a type and label names; its children are the label
//    value tuples (`shoal_commands_total{cmd="get"}`). Children are created up front (or on any
//    thread under the family's lock) and never removed, so a child pointer stays valid for the
//    registry's lifetime and the hot path holds it.
//  - Counters and histograms keep one cell per worker thread, each on its own cache line. A
//    worker writes only its own cell, with a relaxed load and store (no read-modify-write, no
//    lock: one writer per cell). Any thread reads by summing the cells with relaxed loads; a
//    reader sees every increment that happened before it on the writer's side once it is visible,
//    and never a torn value. One extra cell, written with fetch_add, takes increments from threads
//    that are not workers (the control thread, admin handlers).
//  - Callback metrics compute their value when read (a gauge over a snapshot, a counter some
//    module already keeps in an atomic). The callback runs on the reading thread and must be
//    thread-safe.
//  - OwnedValue<T> is a single-writer value any thread may read (a table's key count): the same
//    relaxed load-and-store as a cell, with the arithmetic operators of a plain integer.
//
// THREADING: Registry::Add* and Family::With are thread-safe (a mutex); Counter::Add with a
// worker index only from that worker's thread; AddShared, reads and rendering from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shoal::metrics {

enum class Type { kCounter, kGauge, kHistogram };
std::string_view ToString(Type t);

using LabelValues = std::vector<std::string>;

// A value one thread writes and any thread reads.
template <typename T>
class OwnedValue {
 public:
  OwnedValue(T v = T{}) : v_(v) {}  // NOLINT: converts like the integer it replaces
  OwnedValue(const OwnedValue&) = delete;
  OwnedValue& operator=(const OwnedValue&) = delete;
  T Get() const { return v_.load(std::memory_order_relaxed); }
  operator T() const { return Get(); }  // NOLINT
  OwnedValue& operator=(T v) {
    v_.store(v, std::memory_order_relaxed);
    return *this;
  }
  OwnedValue& operator+=(T d) { return *this = static_cast<T>(Get() + d); }
  OwnedValue& operator-=(T d) { return *this = static_cast<T>(Get() - d); }
  OwnedValue& operator++() { return *this += T{1}; }
  OwnedValue& operator--() { return *this -= T{1}; }

 private:
  std::atomic<T> v_;
};

constexpr size_t kCacheLine = 64;

// A counter with one cell per worker.
class Counter {
 public:
  explicit Counter(unsigned workers);
  // From worker `w`'s thread only. `w` past the workers goes to the shared cell.
  void Add(unsigned w, uint64_t n = 1) {
    if (w >= workers_) return AddShared(n);
    auto& v = cells_[w].v;
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // From any thread.
  void AddShared(uint64_t n = 1) { cells_[workers_].v.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const;
  // Worker w's cell alone (w == workers: the shared cell).
  uint64_t CellValue(unsigned w) const { return cells_[w].v.load(std::memory_order_relaxed); }

 private:
  struct alignas(kCacheLine) Cell {
    std::atomic<uint64_t> v{0};
  };
  unsigned workers_;
  std::unique_ptr<Cell[]> cells_;
};

// A gauge set from any thread (the last Set wins).
class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  double Value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

// Histogram bucket bounds, in the unit observed (integers: nanoseconds for durations). The
// rendering divides them (and the sum) by the family's scale (1e9 for seconds).
using Bounds = std::vector<uint64_t>;
// 250 ns to 1 s, 1-2.5-5 per decade: the default for command durations, in nanoseconds.
const Bounds& DefaultLatencyBoundsNanos();

class Histogram {
 public:
  static constexpr size_t kMaxBuckets = 24;
  Histogram(unsigned workers, const Bounds* bounds);
  // From worker `w`'s thread only (w past the workers: the shared cell, with a lock-free add).
  void Observe(unsigned w, uint64_t v) {
    size_t b = 0;
    const size_t n = bounds_->size();
    while (b < n && v > (*bounds_)[b]) ++b;
    if (w >= workers_) {
      Cell& c = cells_[workers_];
      c.buckets[b].fetch_add(1, std::memory_order_relaxed);
      c.sum.fetch_add(v, std::memory_order_relaxed);
      return;
    }
    Cell& c = cells_[w];
    Bump(c.buckets[b], 1);
    Bump(c.sum, v);
  }
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (== count)
    uint64_t sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;
  const Bounds& bounds() const { return *bounds_; }

 private:
  static void Bump(std::atomic<uint64_t>& a, uint64_t n) {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  struct alignas(kCacheLine) Cell {
    std::array<std::atomic<uint64_t>, kMaxBuckets + 1> buckets{};
    std::atomic<uint64_t> sum{0};
  };
  unsigned workers_;
  const Bounds* bounds_;
  std::unique_ptr<Cell[]> cells_;
};

// One value read from the registry.
struct Sample {
  LabelValues labels;
  double value = 0;
  std::shared_ptr<const Histogram::Snapshot> hist;  // histograms only
};

class Family {
 public:
  Family(std::string name, std::string help, Type type, std::vector<std::string> label_names,
         unsigned workers, Bounds bounds, double scale);
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  Type type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  const Bounds& bounds() const { return bounds_; }
  double scale() const { return scale_; }

  // The child for these label values (created if new). REQUIRES: the family's type, and as many
  // values as label names.
  Counter* CounterWith(const LabelValues& values);
  Gauge* GaugeWith(const LabelValues& values);
  Histogram* HistogramWith(const LabelValues& values);
  // A child whose value a callback computes at read time.
  void CallbackWith(const LabelValues& values, std::function<double()> fn);
  // A callback producing every child at once (label values -> value), for children that come and
  // go (one per replicated map, one per member state).
  using Collector = std::function<void(std::vector<Sample>* out)>;
  void SetCollector(Collector fn);
  // Children whose counter or histogram count is zero are left out of the samples when `skip`.
  void set_skip_zero(bool skip) { skip_zero_ = skip; }

  std::vector<Sample> Collect() const;

 private:
  struct Child {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> callback;
  };
  Child& ChildFor(const LabelValues& values);

  const std::string name_, help_;
  const Type type_;
  const std::vector<std::string> label_names_;
  const unsigned workers_;
  const Bounds bounds_;
  const double scale_;
  bool skip_zero_ = false;
  mutable std::mutex mu_;
  std::map<LabelValues, Child> children_;  // guarded by mu_
  Collector collector_;                    // guarded by mu_
};

class Registry {
 public:
  // `workers`: how many worker cells each counter and histogram has.
  explicit Registry(unsigned workers) : workers_(workers) {}
  unsigned workers() const { return workers_; }

  // A family (the existing one when the name is taken with the same type).
  Family* AddCounter(std::string name, std::string help, std::vector<std::string> labels = {});
  Family* AddGauge(std::string name, std::string help, std::vector<std::string> labels = {});
  // Observations and bounds are integers in some unit; `scale` converts them to the rendered
  // unit (1e6: microseconds observed, seconds rendered).
  Family* AddHistogram(std::string name, std::string help, std::vector<std::string> labels,
                       Bounds bounds, double scale);

  // Shorthands for one unlabelled child.
  metrics::Counter* AddSimpleCounter(std::string name, std::string help);
  void CallbackCounter(std::string name, std::string help, std::function<double()> fn);
  void CallbackGauge(std::string name, std::string help, std::function<double()> fn);

  const Family* Find(std::string_view name) const;
  // The value of an unlabelled (or the first) child, 0 when absent: for INFO.
  double Value(std::string_view name) const;

  // Prometheus text exposition format 0.0.4.
  std::string RenderPrometheus() const;
  // Every family with its samples, in registration order (the JSON API builds on it).
  void ForEach(const std::function<void(const Family&, const std::vector<Sample>&)>& fn) const;

  static constexpr std::string_view kPrometheusContentType =
      "text/plain; version=0.0.4; charset=utf-8";

 private:
  Family* Add(std::string name, std::string help, Type type, std::vector<std::string> labels,
              Bounds bounds, double scale);
  const unsigned workers_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;  // guarded by mu_, in registration order
};

// Label value escaping for the text format: backslash, double quote, newline.
std::string EscapeLabelValue(std::string_view v);
// A double as the text format writes it (+Inf, -Inf, NaN, integers without a fraction).
std::string FormatValue(double v);

}  // namespace shoal::metrics
