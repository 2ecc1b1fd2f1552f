// cumulus-gpu-runc: see gpu_runc.hpp. Argv is runc's; the wrapper's own flags
// (--cumulus-grants=DIR, --cumulus-runc=PATH) go before the subcommand and never reach runc.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "gpu_runc.hpp"
#include "runtime_io.hpp"

namespace {

constexpr int kExitRefused = 1;
constexpr int kExitNoRuntime = 127;

}  // namespace

int main(int argc, char **argv) {
  using namespace chronos::runtime;
  const std::vector<std::string> args(argv + 1, argv + argc);
  Invocation inv;
  try {
    inv = parse_invocation(args, [](const char *name) { return std::getenv(name); });
    if (inv.runtime_path.empty()) inv.runtime_path = find_runc(kRuncSearchPath);
    if (inv.reads_config()) prepare_bundle(inv);
  } catch (const Refusal &r) {
    report_refusal(inv, r.what());
    return kExitRefused;
  } catch (const std::exception &e) {
    // Out of memory and the like: still one line, still a refusal, never a silent start.
    report_refusal(inv, std::string("internal: unexpected failure, got ") + e.what());
    return kExitRefused;
  }
  std::vector<char *> exec_argv;
  exec_argv.push_back(const_cast<char *>(inv.runtime_path.c_str()));
  for (const std::string &a : inv.runtime_args) exec_argv.push_back(const_cast<char *>(a.c_str()));
  exec_argv.push_back(nullptr);
  ::execv(inv.runtime_path.c_str(), exec_argv.data());
  report_refusal(inv, "runtime: cannot execute " + inv.runtime_path + ", got " +
                          std::strerror(errno));
  return kExitNoRuntime;
}
