// The command families (one file each, *_family.cc) and their installation into the engine's
// command table.
#pragma once

namespace shoal::commands {

// Installs every family into the engine's command table (engine::InstallCommandFamilies). Call
// once before the first engine::Engine is built; later calls do nothing.
void InstallCommands();

}  // namespace shoal::commands
