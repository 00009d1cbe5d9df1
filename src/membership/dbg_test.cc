#include <gtest/gtest.h>
#include <functional>
#include "membership/sim_cluster.h"
namespace shoal::membership {
TEST(Dbg, FalseDead) {
  SimClusterOptions o; o.nodes = 50; o.link.delay = sim::DelayDistribution::Exponential(200, 1 * kMs, 20 * kMs); o.drift = 0.0001; o.join_spread = 2*kSec;
  SimCluster c(1, o);
  std::vector<int> all; for (int i=0;i<50;++i) all.push_back(i);
  c.RunUntil([&]{return c.ViewsAgree(all);}, 60*kSec);
  c.RunFor(30*kSec);
  c.net().SetDefaultLink({.delay = o.link.delay, .loss = 0.10, .duplicate = 0});
  std::map<MemberId,int> idx; for (int i=0;i<50;++i) idx[c.id(i)]=i;
  std::vector<std::string> log;
  int found = 0;
  c.on_event = [&](int node, const MemberEvent& e) {
    int subj = idx[e.member.record.id];
    char buf[200]; snprintf(buf, sizeof buf, "%s node %d: %d %s inc=%lu", sim::FormatTime(c.Now()).c_str(), node, subj, std::string(ToString(e.kind)).c_str(), e.member.incarnation.value());
    log.push_back(buf);
    if (e.kind == MemberEventKind::kDead && found++ < 2) {
      for (auto& l : log) if (l.find(": " + std::to_string(subj) + " ") != std::string::npos) printf("%s\n", l.c_str());
      printf("subject health %d inc %lu\n----\n", c.core(subj).health_score(), c.core(subj).incarnation().value());
    }
  };
  c.RunFor(3600*kSec);
}
}
