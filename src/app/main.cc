// The `shoal` binary: parses the command line and runs the chosen subcommand.
#include <iostream>

#include "app/cli.h"
#include "node/server.h"

int main(int argc, char** argv) {
  auto inv = shoal::app::ParseCommandLine(argc, argv);
  if (!inv.ok()) {
    std::cerr << "shoal: " << inv.error().message() << "\n";
    return 2;
  }
  if (inv->exit_code) return *inv->exit_code;
  switch (inv->command) {
    case shoal::app::Command::kServe:
      return shoal::node::RunServerUntilSignal(inv->server);
    default:
      std::cerr << "shoal: subcommand not implemented yet\n";
      return 2;
  }
}
