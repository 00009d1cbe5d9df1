#include "common/metrics.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace shoal::metrics {
namespace {

TEST(Metrics, CounterSumsWorkerCellsAndTheSharedCell) {
  Counter c(3);
  c.Add(0);
  c.Add(1, 5);
  c.Add(2, 2);
  c.AddShared(10);
  c.Add(7, 1);  // not a worker: the shared cell
  EXPECT_EQ(c.Value(), 19u);
  EXPECT_EQ(c.CellValue(1), 5u);
  EXPECT_EQ(c.CellValue(3), 11u);
}

TEST(Metrics, ConcurrentOwnersAndReadersLoseNothing) {
  constexpr unsigned kWorkers = 4;
  constexpr uint64_t kEach = 100000;
  Counter c(kWorkers);
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&c, w] {
      for (uint64_t i = 0; i < kEach; ++i) c.Add(w);
    });
  }
  std::thread shared([&c] {
    for (uint64_t i = 0; i < kEach; ++i) c.AddShared();
  });
  uint64_t last = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t v = c.Value();
    EXPECT_GE(v, last);  // a reader never sees the sum go back
    last = v;
  }
  for (auto& t : threads) t.join();
  shared.join();
  EXPECT_EQ(c.Value(), (kWorkers + 1) * kEach);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Bounds b = {10, 100, 1000};
  Histogram h(2, &b);
  h.Observe(0, 5);
  h.Observe(0, 10);  // on the bound: counted in it (le)
  h.Observe(1, 50);
  h.Observe(1, 5000);
  h.Observe(9, 500);  // shared cell
  auto s = h.Read();
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], 2u);
  EXPECT_EQ(s.cumulative[1], 3u);
  EXPECT_EQ(s.cumulative[2], 4u);
  EXPECT_EQ(s.cumulative[3], 5u);
  EXPECT_EQ(s.count, 5u);
  EXPECT_EQ(s.sum, 5u + 10 + 50 + 5000 + 500);
}

TEST(Metrics, OwnedValueActsAsAnInteger) {
  OwnedValue<int64_t> v;
  v += 10;
  v -= 3;
  ++v;
  --v;
  --v;
  EXPECT_EQ(v.Get(), 6);
  v = 42;
  int64_t plain = v;
  EXPECT_EQ(plain, 42);
}

TEST(Metrics, PrometheusTextHasHelpTypeLabelsAndHistogramSeries) {
  Registry r(2);
  Family* cmds = r.AddCounter("shoal_commands_total", "Commands run.", {"cmd"});
  cmds->CounterWith({"get"})->Add(0, 3);
  cmds->CounterWith({"we\"ird\\\n"})->Add(1, 1);
  r.CallbackGauge("shoal_db_keys", "Keys.", [] { return 7.0; });
  Family* d =
      r.AddHistogram("shoal_commands_duration_seconds", "Durations.", {"cmd"}, {1, 1000}, 1e6);
  d->HistogramWith({"get"})->Observe(0, 500);
  const std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("# HELP shoal_commands_total Commands run.\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE shoal_commands_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("shoal_commands_total{cmd=\"get\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("shoal_commands_total{cmd=\"we\\\"ird\\\\\\n\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE shoal_db_keys gauge\nshoal_db_keys 7\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE shoal_commands_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("shoal_commands_duration_seconds_bucket{cmd=\"get\",le=\"1e-06\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("shoal_commands_duration_seconds_bucket{cmd=\"get\",le=\"0.001\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("shoal_commands_duration_seconds_bucket{cmd=\"get\",le=\"+Inf\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("shoal_commands_duration_seconds_sum{cmd=\"get\"} 0.0005\n"),
            std::string::npos);
  EXPECT_NE(text.find("shoal_commands_duration_seconds_count{cmd=\"get\"} 1\n"), std::string::npos);
  EXPECT_DOUBLE_EQ(r.Value("shoal_db_keys"), 7.0);
  EXPECT_DOUBLE_EQ(r.Value("absent"), 0.0);
}

TEST(Metrics, SkipZeroAndCollectorsShapeTheSamples) {
  Registry r(1);
  Family* f = r.AddCounter("c_total", "c", {"k"});
  f->set_skip_zero(true);
  f->CounterWith({"never"});
  f->CounterWith({"once"})->Add(0);
  Family* g = r.AddGauge("g", "g", {"state"});
  g->SetCollector([](std::vector<Sample>* out) {
    out->push_back(Sample{{"alive"}, 2, nullptr});
    out->push_back(Sample{{"dead"}, 1, nullptr});
  });
  const std::string text = r.RenderPrometheus();
  EXPECT_EQ(text.find("never"), std::string::npos);
  EXPECT_NE(text.find("c_total{k=\"once\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("g{state=\"alive\"} 2\ng{state=\"dead\"} 1\n"), std::string::npos);
  EXPECT_THROW(r.AddGauge("c_total", "again"), std::invalid_argument);
  EXPECT_THROW(f->CounterWith({}), std::invalid_argument);
}

TEST(Metrics, FormatValue) {
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
}

}  // namespace
}  // namespace shoal::metrics
