// What the family files give each other and commands.cc: each family's command list, and the
// pub-sub family's per-client clean-up (also run by RESET).
#pragma once

#include <span>
#include <string>

#include "engine/command.h"

namespace shoal::resp {
class Connection;
}

namespace shoal::commands {

std::span<const engine::CommandSpec> StringCommands();
std::span<const engine::CommandSpec> KeyCommands();
std::span<const engine::CommandSpec> HashCommands();
std::span<const engine::CommandSpec> ServerCommands();
std::span<const engine::CommandSpec> ClusterCommands();
std::span<const engine::CommandSpec> PubSubCommands();
std::span<const engine::CommandSpec> ReplicatedCommands();

// INFO's "# Replicated" section (replicated_family.cc).
std::string InfoReplicatedSection(engine::Engine& e);

// Drops a closing (or RESET) client's subscriptions and bus handlers. The client's worker thread.
void ForgetPubSubClient(engine::Engine& engine, resp::Connection* c);

}  // namespace shoal::commands
