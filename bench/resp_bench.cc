// Micro-benchmarks of the RESP codec: the parser and reply builder on the hot path of every
// request. Run: build/bench/resp_bench. The "ns/cmd" column is nanoseconds per command (or per
// reply); Google Benchmark prints it as seconds with an SI suffix, e.g. "25.1n" = 25.1 ns.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "resp/parser.h"
#include "resp/reply_builder.h"

namespace shoal::resp {
namespace {

std::string Multibulk(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

void SetPerCommand(benchmark::State& state, int64_t commands_per_iteration) {
  state.SetItemsProcessed(state.iterations() * commands_per_iteration);
  state.counters["ns/cmd"] = benchmark::Counter(
      static_cast<double>(commands_per_iteration),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// A pipelined batch of 16 "SET key:NNNNNN <32-byte value>", as redis-benchmark -P 16 sends.
void BM_ParsePipelinedSet16(benchmark::State& state) {
  std::string batch;
  const std::string value(32, 'v');
  for (int i = 0; i < 16; ++i) {
    char key[16];
    std::snprintf(key, sizeof(key), "key:%06d", i * 7919 % 1000000);
    batch += Multibulk({"SET", key, value});
  }
  Parser parser;
  for (auto _ : state) {
    std::string_view rest = batch;
    while (parser.Parse(rest) == ParseStatus::kOk) {
      benchmark::DoNotOptimize(parser.args().data());
      rest.remove_prefix(parser.consumed());
    }
  }
  SetPerCommand(state, 16);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(batch.size()));
}
BENCHMARK(BM_ParsePipelinedSet16);

void BM_ParseGet(benchmark::State& state) {
  const std::string get = Multibulk({"GET", "key:000123"});
  Parser parser;
  for (auto _ : state) {
    benchmark::DoNotOptimize(parser.Parse(get));
    benchmark::DoNotOptimize(parser.args().data());
  }
  SetPerCommand(state, 1);
}
BENCHMARK(BM_ParseGet);

void BM_ParseInlineGet(benchmark::State& state) {
  const std::string get = "GET key:000123\r\n";
  Parser parser;
  for (auto _ : state) {
    benchmark::DoNotOptimize(parser.Parse(get));
    benchmark::DoNotOptimize(parser.args().data());
  }
  SetPerCommand(state, 1);
}
BENCHMARK(BM_ParseInlineGet);

// A 1 MB SET value arriving in 16 KB reads: the parser must not rescan.
void BM_ParseBigBulkIn16KPieces(benchmark::State& state) {
  const std::string cmd = Multibulk({"SET", "big", std::string(1 << 20, 'x')});
  Parser parser;
  for (auto _ : state) {
    for (size_t len = 16384;; len += 16384) {
      if (parser.Parse(std::string_view(cmd).substr(0, std::min(len, cmd.size()))) ==
          ParseStatus::kOk) {
        break;
      }
    }
  }
  SetPerCommand(state, 1);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(cmd.size()));
}
BENCHMARK(BM_ParseBigBulkIn16KPieces);

// Reply benchmarks append 16 replies to a connection-like buffer that is cleared when "sent".
template <typename F>
void RunReplies(benchmark::State& state, F write) {
  std::string out;
  out.reserve(64 * 1024);
  for (auto _ : state) {
    ReplyBuilder rb(&out, 2);
    for (int i = 0; i < 16; ++i) write(rb, i);
    benchmark::DoNotOptimize(out.data());
    out.clear();
  }
  SetPerCommand(state, 16);
}

void BM_ReplyBulk32(benchmark::State& state) {
  const std::string value(32, 'v');
  RunReplies(state, [&](ReplyBuilder& rb, int) { rb.Bulk(value); });
}
BENCHMARK(BM_ReplyBulk32);

void BM_ReplyInteger(benchmark::State& state) {
  RunReplies(state, [](ReplyBuilder& rb, int i) { rb.Integer(1000003 * i); });
}
BENCHMARK(BM_ReplyInteger);

void BM_ReplyOk(benchmark::State& state) {
  RunReplies(state, [](ReplyBuilder& rb, int) { rb.Ok(); });
}
BENCHMARK(BM_ReplyOk);

void BM_ReplyArrayOf10Bulks(benchmark::State& state) {
  std::vector<std::string> values;
  for (int i = 0; i < 10; ++i) values.push_back("value:" + std::to_string(i * 1234567));
  RunReplies(state, [&](ReplyBuilder& rb, int) {
    rb.ArrayHeader(values.size());
    for (const std::string& v : values) rb.Bulk(v);
  });
}
BENCHMARK(BM_ReplyArrayOf10Bulks);

void BM_ReplyDouble(benchmark::State& state) {
  RunReplies(state, [](ReplyBuilder& rb, int i) { rb.Double(1.5 + i * 0.1); });
}
BENCHMARK(BM_ReplyDouble);

}  // namespace
}  // namespace shoal::resp

BENCHMARK_MAIN();
