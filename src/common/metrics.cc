#include "common/metrics.h"

#include <fmt/format.h>

#include <cassert>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace shoal::metrics {

std::string_view ToString(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

Counter::Counter(unsigned workers) : workers_(workers), cells_(new Cell[workers + 1]) {}

uint64_t Counter::Value() const {
  uint64_t total = 0;
  for (unsigned i = 0; i <= workers_; ++i) total += cells_[i].v.load(std::memory_order_relaxed);
  return total;
}

const Bounds& DefaultLatencyBoundsNanos() {
  static const Bounds kBounds = {250,       500,       1000,      2500,     5000,     10000,
                                 25000,     50000,     100000,    250000,   500000,   1000000,
                                 2500000,   5000000,   10000000,  25000000, 50000000, 100000000,
                                 250000000, 500000000, 1000000000};
  return kBounds;
}

Histogram::Histogram(unsigned workers, const Bounds* bounds)
    : workers_(workers), bounds_(bounds), cells_(new Cell[workers + 1]) {
  if (bounds->size() > kMaxBuckets) throw std::invalid_argument("too many histogram buckets");
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  const size_t n = bounds_->size();
  std::vector<uint64_t> per(n + 1, 0);
  for (unsigned w = 0; w <= workers_; ++w) {
    for (size_t b = 0; b <= n; ++b) per[b] += cells_[w].buckets[b].load(std::memory_order_relaxed);
    s.sum += cells_[w].sum.load(std::memory_order_relaxed);
  }
  s.cumulative.resize(n + 1);
  uint64_t run = 0;
  for (size_t b = 0; b <= n; ++b) s.cumulative[b] = run += per[b];
  s.count = run;
  return s;
}

Family::Family(std::string name, std::string help, Type type, std::vector<std::string> label_names,
               unsigned workers, Bounds bounds, double scale)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      workers_(workers),
      bounds_(std::move(bounds)),
      scale_(scale) {}

Family::Child& Family::ChildFor(const LabelValues& values) {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument(fmt::format("metric {}: {} label values for {} labels", name_,
                                            values.size(), label_names_.size()));
  }
  return children_[values];
}

Counter* Family::CounterWith(const LabelValues& values) {
  assert(type_ == Type::kCounter);
  std::lock_guard lock(mu_);
  Child& c = ChildFor(values);
  if (c.counter == nullptr) c.counter = std::make_unique<Counter>(workers_);
  return c.counter.get();
}

Gauge* Family::GaugeWith(const LabelValues& values) {
  assert(type_ == Type::kGauge);
  std::lock_guard lock(mu_);
  Child& c = ChildFor(values);
  if (c.gauge == nullptr) c.gauge = std::make_unique<Gauge>();
  return c.gauge.get();
}

Histogram* Family::HistogramWith(const LabelValues& values) {
  assert(type_ == Type::kHistogram);
  std::lock_guard lock(mu_);
  Child& c = ChildFor(values);
  if (c.histogram == nullptr) c.histogram = std::make_unique<Histogram>(workers_, &bounds_);
  return c.histogram.get();
}

void Family::CallbackWith(const LabelValues& values, std::function<double()> fn) {
  assert(type_ != Type::kHistogram);
  std::lock_guard lock(mu_);
  ChildFor(values).callback = std::move(fn);
}

void Family::SetCollector(Collector fn) {
  std::lock_guard lock(mu_);
  collector_ = std::move(fn);
}

std::vector<Sample> Family::Collect() const {
  std::vector<Sample> out;
  Collector collector;
  {
    std::lock_guard lock(mu_);
    out.reserve(children_.size());
    for (const auto& [labels, c] : children_) {
      Sample s;
      s.labels = labels;
      if (c.callback) {
        s.value = c.callback();
      } else if (c.counter != nullptr) {
        const uint64_t v = c.counter->Value();
        if (skip_zero_ && v == 0) continue;
        s.value = static_cast<double>(v);
      } else if (c.gauge != nullptr) {
        s.value = c.gauge->Value();
      } else if (c.histogram != nullptr) {
        auto snap = std::make_shared<Histogram::Snapshot>(c.histogram->Read());
        if (skip_zero_ && snap->count == 0) continue;
        s.value = static_cast<double>(snap->count);
        s.hist = std::move(snap);
      }
      out.push_back(std::move(s));
    }
    collector = collector_;
  }
  // Outside the lock: a collector may take locks of its own (a module's snapshot).
  if (collector) collector(&out);
  return out;
}

Family* Registry::Add(std::string name, std::string help, Type type,
                      std::vector<std::string> labels, Bounds bounds, double scale) {
  std::lock_guard lock(mu_);
  for (auto& f : families_) {
    if (f->name() == name) {
      if (f->type() != type) throw std::invalid_argument("metric " + name + " re-registered");
      return f.get();
    }
  }
  families_.push_back(std::make_unique<Family>(std::move(name), std::move(help), type,
                                               std::move(labels), workers_, std::move(bounds),
                                               scale));
  return families_.back().get();
}

Family* Registry::AddCounter(std::string name, std::string help, std::vector<std::string> labels) {
  return Add(std::move(name), std::move(help), Type::kCounter, std::move(labels), {}, 1);
}

Family* Registry::AddGauge(std::string name, std::string help, std::vector<std::string> labels) {
  return Add(std::move(name), std::move(help), Type::kGauge, std::move(labels), {}, 1);
}

Family* Registry::AddHistogram(std::string name, std::string help, std::vector<std::string> labels,
                               Bounds bounds, double scale) {
  return Add(std::move(name), std::move(help), Type::kHistogram, std::move(labels),
             std::move(bounds), scale);
}

metrics::Counter* Registry::AddSimpleCounter(std::string name, std::string help) {
  return AddCounter(std::move(name), std::move(help))->CounterWith({});
}

void Registry::CallbackCounter(std::string name, std::string help, std::function<double()> fn) {
  AddCounter(std::move(name), std::move(help))->CallbackWith({}, std::move(fn));
}

void Registry::CallbackGauge(std::string name, std::string help, std::function<double()> fn) {
  AddGauge(std::move(name), std::move(help))->CallbackWith({}, std::move(fn));
}

const Family* Registry::Find(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& f : families_) {
    if (f->name() == name) return f.get();
  }
  return nullptr;
}

double Registry::Value(std::string_view name) const {
  const Family* f = Find(name);
  if (f == nullptr) return 0;
  auto samples = f->Collect();
  return samples.empty() ? 0 : samples.front().value;
}

void Registry::ForEach(
    const std::function<void(const Family&, const std::vector<Sample>&)>& fn) const {
  std::vector<const Family*> fams;
  {
    std::lock_guard lock(mu_);
    for (const auto& f : families_) fams.push_back(f.get());
  }
  for (const Family* f : fams) fn(*f, f->Collect());
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// HELP text escapes backslash and newline only.
std::string EscapeHelp(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void AppendLabels(std::string* out, const std::vector<std::string>& names,
                  const LabelValues& values, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  *out += '{';
  bool first = true;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (!first) *out += ',';
    first = false;
    *out += names[i];
    *out += "=\"";
    *out += EscapeLabelValue(values[i]);
    *out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) *out += ',';
    *out += extra_name;
    *out += "=\"";
    *out += extra_value;
    *out += '"';
  }
  *out += '}';
}

}  // namespace

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

std::string Registry::RenderPrometheus() const {
  std::string out;
  ForEach([&out](const Family& f, const std::vector<Sample>& samples) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name(), EscapeHelp(f.help()), f.name(),
                       ToString(f.type()));
    for (const Sample& s : samples) {
      if (f.type() != Type::kHistogram || s.hist == nullptr) {
        out += f.name();
        AppendLabels(&out, f.label_names(), s.labels);
        out += ' ';
        out += FormatValue(s.value);
        out += '\n';
        continue;
      }
      const auto& h = *s.hist;
      for (size_t b = 0; b < h.cumulative.size(); ++b) {
        const std::string le = b < f.bounds().size()
                                   ? FormatValue(static_cast<double>(f.bounds()[b]) / f.scale())
                                   : "+Inf";
        out += f.name();
        out += "_bucket";
        AppendLabels(&out, f.label_names(), s.labels, "le", le);
        out += ' ';
        out += FormatValue(static_cast<double>(h.cumulative[b]));
        out += '\n';
      }
      out += f.name() + "_sum";
      AppendLabels(&out, f.label_names(), s.labels);
      out += ' ' + FormatValue(static_cast<double>(h.sum) / f.scale()) + '\n';
      out += f.name() + "_count";
      AppendLabels(&out, f.label_names(), s.labels);
      out += ' ' + FormatValue(static_cast<double>(h.count)) + '\n';
    }
  });
  return out;
}

}  // namespace shoal::metrics
