// Linked into the test binaries that run commands without a Server: installs the command
// families into the engine's table before the first test, as Server::Start does.
#include <gtest/gtest.h>

#include "commands/commands.h"

namespace {

class InstallFamilies : public ::testing::Environment {
 public:
  void SetUp() override { shoal::commands::InstallCommands(); }
};

[[maybe_unused]] const ::testing::Environment* const kInstallFamilies =
    ::testing::AddGlobalTestEnvironment(new InstallFamilies);

}  // namespace
