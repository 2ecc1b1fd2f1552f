#include "helpers.hpp"

#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char **environ;

namespace chronos_test {

namespace {

std::string default_temp_base() {
  const char *base = std::getenv("TMPDIR");
  return base != nullptr && *base != '\0' ? base : "/tmp";
}

}  // namespace

TempDir::TempDir() : TempDir(default_temp_base()) {}

TempDir::TempDir(const std::string &base) {
  std::string tmpl = base + "/chronos-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  ::nftw(
      path_.c_str(),
      [](const char *p, const struct stat *, int, struct FTW *) { return ::remove(p); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

std::vector<chronos::DeviceInfo> fake_devices(size_t n) {
  std::vector<chronos::DeviceInfo> out;
  for (size_t i = 0; i < n; ++i) {
    chronos::DeviceInfo d;
    d.index = static_cast<uint32_t>(i);
    d.name = "Test GPU " + std::to_string(i);
    d.vendor = "tests";
    d.platform = "fixed list";
    d.type = "GPU";
    d.total_memory_bytes = 16ull << 30;
    out.push_back(d);
  }
  return out;
}

chronos::Config test_config(const std::string &dir) {
  chronos::Config cfg;
  cfg.state_dir = dir;
  return cfg;
}

std::unique_ptr<chronos::Engine> make_engine(const chronos::Config &cfg, const ManualClock &clock,
                                             size_t devices, int64_t caller_uid) {
  return std::make_unique<chronos::Engine>(
      cfg, [devices] { return fake_devices(devices); }, clock.fn(), nullptr,
      [caller_uid] { return caller_uid; });
}

std::string read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string &path, const std::string &data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out) throw std::runtime_error("cannot write " + path);
}

ProcResult run_process(const std::vector<std::string> &argv,
                       const std::map<std::string, std::string> &env) {
  TempDir io;
  const std::string out_path = io.file("out");
  const std::string err_path = io.file("err");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);

  std::vector<std::string> env_strings;
  for (char **e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (env.count(key) == 0) env_strings.push_back(kv);
  }
  for (const auto &kv : env) env_strings.push_back(kv.first + "=" + kv.second);
  std::vector<char *> envp;
  for (auto &s : env_strings) envp.push_back(&s[0]);
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char *> argp;
  for (auto &s : args) argp.push_back(&s[0]);
  argp.push_back(nullptr);

  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argp[0], &fa, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn failed: " + std::string(strerror(rc)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  ProcResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

ProcResult run_cli(const std::string &state_dir, const std::vector<std::string> &args) {
  std::vector<std::string> argv{CHRONOS_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, {{"CHRONOS_STATE_DIR", state_dir}, {"CHRONOS_CONFIG", ""}});
}

// --- JSON reader -------------------------------------------------------------------------

namespace {

struct Parser {
  const std::string &t;
  size_t i = 0;

  [[noreturn]] void bad(const char *what) {
    throw std::runtime_error(std::string("bad JSON (") + what + ") at " + std::to_string(i) +
                             ": " + t.substr(0, 200));
  }
  void ws() {
    while (i < t.size() && (t[i] == ' ' || t[i] == '\n' || t[i] == '\t' || t[i] == '\r')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < t.size() && t[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  std::string string() {
    if (!eat('"')) bad("expected string");
    std::string s;
    while (i < t.size() && t[i] != '"') {
      if (t[i] == '\\') {
        ++i;
        if (i >= t.size()) bad("escape");
        const char c = t[i++];
        switch (c) {
          case 'n': s += '\n'; break;
          case 't': s += '\t'; break;
          case 'r': s += '\r'; break;
          case 'u': {
            if (i + 4 > t.size()) bad("unicode escape");
            s += static_cast<char>(std::strtol(t.substr(i, 4).c_str(), nullptr, 16));
            i += 4;
            break;
          }
          default: s += c;
        }
      } else {
        s += t[i++];
      }
    }
    if (i >= t.size()) bad("unterminated string");
    ++i;
    return s;
  }
  Json value() {
    ws();
    Json v;
    if (i >= t.size()) bad("unexpected end");
    const char c = t[i];
    if (c == '{') {
      ++i;
      v.type = Json::Type::kObject;
      if (eat('}')) return v;
      do {
        const std::string k = string();
        if (!eat(':')) bad("expected ':'");
        v.o[k] = value();
      } while (eat(','));
      if (!eat('}')) bad("expected '}'");
    } else if (c == '[') {
      ++i;
      v.type = Json::Type::kArray;
      if (eat(']')) return v;
      do {
        v.a.push_back(value());
      } while (eat(','));
      if (!eat(']')) bad("expected ']'");
    } else if (c == '"') {
      v.type = Json::Type::kString;
      v.s = string();
    } else if (t.compare(i, 4, "true") == 0) {
      v.type = Json::Type::kBool;
      v.b = true;
      i += 4;
    } else if (t.compare(i, 5, "false") == 0) {
      v.type = Json::Type::kBool;
      i += 5;
    } else if (t.compare(i, 4, "null") == 0) {
      i += 4;
    } else {
      char *end = nullptr;
      v.n = std::strtod(t.c_str() + i, &end);
      if (end == t.c_str() + i) bad("unexpected character");
      v.type = Json::Type::kNumber;
      i = static_cast<size_t>(end - t.c_str());
    }
    return v;
  }
};

}  // namespace

const Json &Json::operator[](const std::string &key) const {
  auto it = o.find(key);
  if (it == o.end()) throw std::runtime_error("JSON has no key '" + key + "'");
  return it->second;
}

Json parse_json(const std::string &text) {
  Parser p{text};
  Json v = p.value();
  p.ws();
  if (p.i != text.size()) p.bad("trailing characters");
  return v;
}

}  // namespace chronos_test
