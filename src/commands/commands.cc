#include "commands/commands.h"

#include "commands/families.h"
#include "engine/command.h"

namespace shoal::commands {

void InstallCommands() {
  const engine::CommandFamily families[] = {
      {StringCommands()},     {KeyCommands()},     {HashCommands()},
      {ServerCommands()},     {ClusterCommands()}, {PubSubCommands(), &ForgetPubSubClient},
      {ReplicatedCommands()},
  };
  engine::InstallCommandFamilies(families);
}

}  // namespace shoal::commands
