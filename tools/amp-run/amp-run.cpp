//===- amp-run.cpp - train, step and benchmark a compiled plan ------------===//
//
//   amp-run train|step|eval|bench|evaluate|export|info PLAN [flags]
//   amp-run devices
// (`amp-run COMMAND --help` lists each command's flags; see docs/cli.md.)
//
//===----------------------------------------------------------------------===//

#include "Export.h"
#include "Npy.h"
#include "Ranks.h"
#include "TrainingData.h"
#include "amprt/Session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

using amprt::Feed;
using amprt::Program;
using amprt::Session;
using amprt::Status;
using amprt::TensorInfo;

namespace {

struct Args;

/// A subcommand: its usage, the flags it takes (with a value, or alone) and
/// what runs it. `formerName` still works, with a note that it was renamed.
struct Command {
  const char *name;
  const char *usage;
  std::vector<std::string> valueFlags, switches;
  Status (*run)(const Args &);
  bool takesPlan = true;
  const char *formerName = nullptr;
};

Status train(const Args &args);
Status stepCommand(const Args &args);
Status forwardCommand(const Args &args);
Status bench(const Args &args);
Status accuracyCommand(const Args &args);
Status exportCommand(const Args &args);
Status info(const Args &args);
Status devicesCommand(const Args &args);

/// Flags of every command that runs a plan (see createSession).
const std::vector<std::string> kSessionFlags = {"device", "threads", "cpu-gemms",
                                                "collectives", "collective-timeout"};
const std::vector<std::string> kSessionSwitches = {"tf32"};

const std::vector<Command> &commands() {
  static const std::vector<Command> table = {
      {"train",
       "amp-run train PLAN --data fashion-mnist=DIR|text=FILE [--epochs N] [--seed S]\n"
       "                   [--metrics FILE] [--log-every N] [--max-steps N] [--threads N]\n"
       "                   [--checkpoint FILE [--checkpoint-every N]] [--resume FILE]\n"
       "                   [--check-numerics] [--quiet]\n",
       {"data", "epochs", "seed", "metrics", "log-every", "max-steps", "checkpoint",
        "checkpoint-every", "resume"},
       {"check-numerics", "quiet"},
       train},
      {"step",
       "amp-run step  PLAN --feed NAME=FILE.npy ... [--steps N] --dump DIR [--metrics FILE]\n"
       "                   [--resume FILE] [--checkpoint FILE] [--check-numerics]\n"
       "                   [--allow-nonfinite-inputs]\n",
       {"feed", "steps", "dump", "metrics", "resume", "checkpoint"},
       {"check-numerics", "allow-nonfinite-inputs"},
       stepCommand},
      {"forward",
       "amp-run forward PLAN --feed NAME=FILE.npy ... --dump DIR   (was: eval)\n",
       {"feed", "dump"}, {}, forwardCommand, /*takesPlan=*/true, /*formerName=*/"eval"},
      {"bench",
       "amp-run bench PLAN [--versus PLAN2]... [--steps N] [--warmup N] [--repeat N]\n"
       "                   [--seed S] [--threads N] [--profile]\n",
       {"steps", "warmup", "repeat", "seed", "versus"},
       {"profile"},
       bench},
      {"accuracy",
       "amp-run accuracy PLAN --data fashion-mnist=DIR|text=FILE [--checkpoint FILE]\n"
       "                   (was: evaluate; text data reports held-out loss and perplexity)\n",
       {"data", "checkpoint"}, {}, accuracyCommand, /*takesPlan=*/true,
       /*formerName=*/"evaluate"},
      {"export",
       "amp-run export PLAN --onnx MODEL.onnx --output OUT.onnx [--checkpoint FILE]\n"
       "                    [--precision fp32|fp16|bf16]\n"
       "amp-run export PLAN --ort-checkpoint ARTIFACTS/checkpoint --output OUT [--checkpoint FILE]\n",
       {"onnx", "ort-checkpoint", "output", "checkpoint", "precision"}, {}, exportCommand},
      {"info", "amp-run info  PLAN [--checkpoint FILE]\n", {"checkpoint"}, {}, info},
      {"devices",
       "amp-run devices   (the CPU, its oneDNN ISA, native or emulated GEMMs per precision,\n"
       "                   and the usable GPUs)\n",
       {}, {}, devicesCommand, /*takesPlan=*/false},
  };
  return table;
}

const char kSessionHelp[] =
    "every command that runs a plan also takes --device cpu|cuda|cuda:N (default: the\n"
    "AMP_DEVICE environment variable, else cpu), --threads N (CPU threads),\n"
    "--cpu-gemms native|fastest|widened (low-precision GEMMs and convolutions on the\n"
    "CPU: always native, native only where faster here, or in f32 on widened\n"
    "operands; the default: AMP_CPU_GEMMS, else native), on a GPU --tf32 (let FP32\n"
    "GEMMs use TF32 Tensor Cores; off by default) and, under mpirun,\n"
    "--collectives mpi|nccl (on GPUs: NCCL by default, or MPI through host memory) and\n"
    "--collective-timeout SECONDS (a collective that long means a rank died or hangs: the\n"
    "job stops with an error; default 300, 0 waits forever)\n";

std::string usage(const Command *only = nullptr) {
  std::string text = "usage:\n";
  for (const Command &command : commands())
    if (!only || only == &command)
      text += "  " + std::string(command.usage);
  if (!only || only->takesPlan)
    text += kSessionHelp;
  if (!only)
    text += "amp-run --help | COMMAND --help | --version\n";
  return text;
}

const Command *findCommand(const std::string &name) {
  for (const Command &command : commands()) {
    if (name == command.name)
      return &command;
    if (command.formerName && name == command.formerName) {
      std::fprintf(stderr, "amp-run: note: '%s' is now called '%s'; the old name will go away\n",
                   command.formerName, command.name);
      return &command;
    }
  }
  return nullptr;
}

bool contains(const std::vector<std::string> &list, const std::string &name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

/// Parsed command line: the command, the plan and --flag values.
struct Args {
  const Command *command = nullptr;
  std::string plan;
  std::multimap<std::string, std::string> flags; // "{rank}" already replaced
  bool help = false;
  amprun::Ranks *ranks = nullptr; // never null once main has joined

  std::string get(const std::string &name, const std::string &fallback = "") const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
  Status getInt(const std::string &name, int64_t fallback, int64_t *value) const {
    std::string text = get(name);
    if (text.empty()) {
      *value = fallback;
      return Status::ok();
    }
    char *end = nullptr;
    *value = std::strtoll(text.c_str(), &end, 10);
    if (*end != '\0' || *value < 0)
      return Status::error("--" + name + " expects a non-negative integer, got '" + text + "'");
    return Status::ok();
  }
};

/// `amp-run COMMAND [PLAN] [--flag VALUE | --flag=VALUE | --switch]...`.
/// Flags the command does not take are errors, so a typo never goes unseen.
Status parseArgs(int argc, char **argv, Args *args) {
  if (argc < 2)
    return Status::error("missing command");
  args->command = findCommand(argv[1]);
  if (!args->command)
    return Status::error(std::string("unknown command '") + argv[1] + "'");
  const Command &command = *args->command;
  bool runsPlan = command.takesPlan;
  for (int i = 2; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "--help" || word == "-h") {
      args->help = true;
      return Status::ok();
    }
    if (word.rfind("--", 0) != 0) {
      if (!command.takesPlan || !args->plan.empty())
        return Status::error("unexpected argument '" + word + "'");
      args->plan = word;
      continue;
    }
    std::string flag = word.substr(2), value;
    auto eq = flag.find('=');
    bool inlineValue = eq != std::string::npos;
    if (inlineValue) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    bool isSwitch = contains(command.switches, flag) ||
                    (runsPlan && contains(kSessionSwitches, flag));
    bool takesValue = contains(command.valueFlags, flag) ||
                      (runsPlan && contains(kSessionFlags, flag));
    if (!isSwitch && !takesValue)
      return Status::error("unknown flag '--" + flag + "' for 'amp-run " + command.name +
                           "' (see amp-run " + command.name + " --help)");
    if (isSwitch) {
      if (inlineValue)
        return Status::error("--" + flag + " takes no value");
      args->flags.emplace(flag, "1");
      continue;
    }
    if (!inlineValue) {
      if (i + 1 >= argc)
        return Status::error("--" + flag + " needs a value");
      value = argv[++i];
    }
    args->flags.emplace(flag, value);
  }
  if (command.takesPlan && args->plan.empty())
    return Status::error("missing plan");
  return Status::ok();
}

/// `"name": value, "name": value` (six decimals), for JSON lines.
std::string scoreJson(const amprun::Scores &scores) {
  std::string json;
  for (const auto &[name, value] : scores)
    json += (json.empty() ? "\"" : ", \"") + name + "\": " + std::to_string(value);
  return json;
}

/// "name value; name value" with four decimals, for people.
std::string scoreText(const amprun::Scores &scores) {
  std::string text;
  char buffer[64];
  for (const auto &[name, value] : scores) {
    std::snprintf(buffer, sizeof(buffer), "%s %.4f", name.c_str(), value);
    text += (text.empty() ? "" : "; ") + std::string(buffer);
  }
  return text;
}

double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

void drawProgress(int64_t epoch, int64_t epochs, int64_t step, int64_t steps, float loss,
                  double samplesPerSecond) {
  int width = 30, filled = static_cast<int>(width * step / std::max<int64_t>(steps, 1));
  std::fprintf(stderr, "\repoch %lld/%lld [%s%s] %lld/%lld loss %.4f  %.0f samples/s ",
               (long long)epoch, (long long)epochs, std::string(filled, '#').c_str(),
               std::string(width - filled, '.').c_str(), (long long)step, (long long)steps,
               loss, samplesPerSecond);
  std::fflush(stderr);
}

/// --`flag`'s value, else the environment `variable`'s if set and not
/// empty, else `fallback`.
std::string flagOrEnvironment(const Args &args, const std::string &flag, const char *variable,
                              const char *fallback) {
  const char *fromEnvironment = std::getenv(variable);
  return args.get(flag, fromEnvironment && *fromEnvironment ? fromEnvironment : fallback);
}

Status createSession(const Args &args, const std::string &plan,
                     std::unique_ptr<Session> *session) {
  int64_t threads;
  AMPRT_RETURN_IF_ERROR(args.getInt("threads", 0, &threads));
  amprt::SessionOptions options;
  options.numThreads = static_cast<int>(threads);
  options.profile = args.flags.count("profile") > 0;
  options.checkNumerics = args.flags.count("check-numerics") > 0;
  options.allowNonFiniteInputs = args.flags.count("allow-nonfinite-inputs") > 0;
  options.device = args.ranks->deviceFor(flagOrEnvironment(args, "device", "AMP_DEVICE", "cpu"));
  options.allowTf32 = args.flags.count("tf32") > 0;
  bool fromFlag = args.flags.count("cpu-gemms") > 0;
  std::string gemms = flagOrEnvironment(args, "cpu-gemms", "AMP_CPU_GEMMS", "native");
  if (gemms == "native")
    options.cpuGemms = amprt::CpuGemms::Native;
  else if (gemms == "fastest")
    options.cpuGemms = amprt::CpuGemms::Fastest;
  else if (gemms == "widened")
    options.cpuGemms = amprt::CpuGemms::Widened;
  else
    return Status::error(std::string(fromFlag ? "--cpu-gemms" : "AMP_CPU_GEMMS") +
                         ": expected native, fastest or widened, got '" + gemms + "'");
  int64_t timeout;
  AMPRT_RETURN_IF_ERROR(args.getInt("collective-timeout", 300, &timeout));
  AMPRT_RETURN_IF_ERROR(args.ranks->communicator(options.device, args.get("collectives"),
                                                 static_cast<double>(timeout),
                                                 &options.communicator));
  return Session::create(plan, options, session);
}

Status createSession(const Args &args, std::unique_ptr<Session> *session) {
  return createSession(args, args.plan, session);
}

/// "0.50".
std::string formatRate(double rate) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", rate);
  return text;
}

/// "bf16 and fp16".
std::string typeList(const std::vector<amprt::DType> &types) {
  std::string text;
  for (amprt::DType type : types)
    text += std::string(text.empty() ? "" : " and ") + amprt::dtypeName(type);
  return text;
}

/// One line when some GEMMs of the plan are emulated or widened, so that a
/// BF16 run at FP32 speed is explained rather than a mystery.
void noteEmulation(const Session &session) {
  std::vector<amprt::DType> emulated = session.emulatedGemmTypes(),
                            widened = session.widenedGemmTypes();
  if (emulated.empty() && widened.empty())
    return;
  amprt::CpuCapabilities cpu = amprt::cpuCapabilities();
  if (!emulated.empty())
    std::fprintf(stderr,
                 "amp-run: note: %s GEMMs are emulated on this CPU (%s, oneDNN ISA %s has no "
                 "native kernel): f32 GEMMs on widened operands, expect FP32 speed\n",
                 typeList(emulated).c_str(), cpu.model.c_str(), cpu.onednnIsa.c_str());
  if (widened.empty())
    return;
  std::string why = cpu.bf16DotRate > 0
                        ? "its bf16 dot products run at " + formatRate(cpu.bf16DotRate) +
                              "x its f32 FMA rate"
                        : "it has no AVX-512 BF16 instructions";
  std::fprintf(stderr,
               "amp-run: note: %s GEMMs run in f32 on widened operands (--cpu-gemms) on this "
               "CPU (%s): %s\n",
               typeList(widened).c_str(), cpu.model.c_str(), why.c_str());
}

using MetricsFile = std::unique_ptr<std::FILE, int (*)(std::FILE *)>;

/// Opens --metrics for writing, if given (null otherwise).
Status openMetrics(const Args &args, MetricsFile *file) {
  if (std::string path = args.get("metrics"); !path.empty()) {
    file->reset(std::fopen(path.c_str(), "w"));
    if (!*file)
      return Status::error(path + ": cannot open for writing");
  }
  return Status::ok();
}

/// With --check-numerics: says which op produced the step's first inf/NaN.
void reportNonFinite(const Session &session, int64_t step, bool afterProgressBar) {
  if (!session.firstNonFinite().empty())
    std::fprintf(stderr, "%samp-run: step %lld: first non-finite value from %s\n",
                 afterProgressBar ? "\n" : "", (long long)step,
                 session.firstNonFinite().c_str());
}

/// A float as JSON: null when it is not finite (JSON has no NaN).
std::string jsonNumber(float value) {
  if (!std::isfinite(value))
    return "null";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.8g", value);
  return buffer;
}

/// The per-step scalars a plan reports (role "metric": loss_scale, skipped,
/// grad_norm), read after every step.
class StepMetrics {
public:
  explicit StepMetrics(const Session &session) {
    for (const auto &info : session.outputs(Program::Train))
      if (info.role == "metric" && info.dtype == amprt::DType::F32 && info.numElements() == 1)
        names.push_back(info.name);
    values.assign(names.size(), 0.0f);
  }
  Status read(const Session &session) {
    for (size_t i = 0; i < names.size(); ++i) {
      AMPRT_RETURN_IF_ERROR(
          session.readOutput(Program::Train, names[i], &values[i], sizeof(float)));
      if (isFlag(names[i]) && values[i] != 0.0f)
        ++flaggedInInterval[names[i]];
    }
    return Status::ok();
  }
  /// `, "name": value, ...` for a JSON line. The flags ("skipped": a
  /// non-finite step whose update was skipped; "nonfinite": one whose update
  /// was applied) are the last step's, "NAME_steps" their count since the
  /// previous line.
  std::string json() {
    std::string text;
    char buffer[128];
    for (size_t i = 0; i < names.size(); ++i) {
      if (isFlag(names[i]))
        std::snprintf(buffer, sizeof(buffer), ", \"%s\": %s, \"%s_steps\": %lld",
                      names[i].c_str(), values[i] != 0.0f ? "true" : "false", names[i].c_str(),
                      (long long)flaggedInInterval[names[i]]);
      else if (!std::isfinite(values[i])) // JSON has no NaN or infinity
        std::snprintf(buffer, sizeof(buffer), ", \"%s\": null", names[i].c_str());
      else
        std::snprintf(buffer, sizeof(buffer), ", \"%s\": %.8g", names[i].c_str(), values[i]);
      text += buffer;
    }
    flaggedInInterval.clear();
    return text;
  }

private:
  static bool isFlag(const std::string &name) { return name == "skipped" || name == "nonfinite"; }
  std::vector<std::string> names;
  std::vector<float> values;
  std::map<std::string, int64_t> flaggedInInterval;
};

Status train(const Args &args) {
  int64_t epochs, seed, logEvery, maxSteps;
  AMPRT_RETURN_IF_ERROR(args.getInt("epochs", 1, &epochs));
  AMPRT_RETURN_IF_ERROR(args.getInt("seed", 0, &seed));
  AMPRT_RETURN_IF_ERROR(args.getInt("log-every", 50, &logEvery));
  AMPRT_RETURN_IF_ERROR(args.getInt("max-steps", 0, &maxSteps));
  logEvery = std::max<int64_t>(logEvery, 1);

  std::unique_ptr<Session> session;
  AMPRT_RETURN_IF_ERROR(createSession(args, &session));
  // Data-parallel (under mpirun -np N): every rank steps on its own shard of
  // each global batch of N x the plan's batch; rank 0 alone writes metrics,
  // progress and checkpoints and evaluates.
  const amprun::Ranks &ranks = *args.ranks;
  if (ranks.size() > 1 && session->dataParallelRanks() != ranks.size())
    return Status::error(args.plan + ": launched over " + std::to_string(ranks.size()) +
                         " ranks, but the plan was not compiled for data-parallel training "
                         "(--amp-pipeline='... data-parallel=" +
                         std::to_string(ranks.size()) + "'): each rank would train alone");
  bool writer = ranks.rank() == 0;
  if (writer)
    noteEmulation(*session);
  std::unique_ptr<amprun::TrainingData> data;
  AMPRT_RETURN_IF_ERROR(amprun::TrainingData::open(args.get("data"), *session, true, &data));

  MetricsFile metrics(nullptr, &std::fclose);
  if (writer)
    AMPRT_RETURN_IF_ERROR(openMetrics(args, &metrics));
  bool progress = writer && isatty(STDERR_FILENO) && !args.flags.count("quiet");
  StepMetrics stepMetrics(*session);

  int64_t batch = data->batch(), globalBatch = batch * ranks.size();
  int64_t shard = batch * ranks.rank(); // this rank's samples within a global batch
  std::vector<int64_t> order(data->trainCount());
  // The last partial global batch is dropped.
  int64_t stepsPerEpoch = data->trainCount() / globalBatch;
  int64_t globalStep = 0, firstEpoch = 1, firstStep = 0;
  amprun::Scores scores;

  // Checkpoints hold the session's state and where training stood; each
  // epoch's order depends only on (seed, epoch), so a resumed run sees
  // exactly the batches the uninterrupted one would.
  std::string checkpointPath = args.get("checkpoint");
  int64_t checkpointEvery;
  AMPRT_RETURN_IF_ERROR(args.getInt("checkpoint-every", 0, &checkpointEvery));
  if (std::string resume = args.get("resume"); !resume.empty()) {
    std::map<std::string, std::string> position;
    AMPRT_RETURN_IF_ERROR(session->loadCheckpoint(resume, &position));
    if (!position.count("epoch") || !position.count("step_in_epoch") ||
        position["seed"] != std::to_string(seed))
      return Status::error(resume + ": not an amp-run training checkpoint for --seed " +
                           std::to_string(seed));
    // Steps count global batches: resuming over another number of ranks
    // would read other samples at every later step.
    std::string savedRanks = position.count("ranks") ? position["ranks"] : "1";
    if (savedRanks != std::to_string(ranks.size()))
      return Status::error(resume + ": saved by a run over " + savedRanks +
                           " rank(s); resume it with mpirun -np " + savedRanks +
                           " (this run has " + std::to_string(ranks.size()) + ")");
    firstEpoch = std::stoll(position["epoch"]);
    firstStep = std::stoll(position["step_in_epoch"]);
    globalStep = std::stoll(position["global_step"]);
    if (firstStep >= stepsPerEpoch) {
      ++firstEpoch;
      firstStep = 0;
    }
  }
  int64_t savedAtStep = -1, evaluatedAtStep = -1; // the global steps last saved, evaluated
  auto saveCheckpoint = [&](int64_t epoch, int64_t stepInEpoch) -> Status {
    savedAtStep = globalStep;
    if (checkpointPath.empty() || !writer) // every rank holds the same state
      return Status::ok();
    return session->saveCheckpoint(checkpointPath,
                                   {{"epoch", std::to_string(epoch)},
                                    {"step_in_epoch", std::to_string(stepInEpoch)},
                                    {"global_step", std::to_string(globalStep)},
                                    {"seed", std::to_string(seed)},
                                    {"ranks", std::to_string(ranks.size())}});
  };

  bool stopped = false; // by --max-steps
  for (int64_t epoch = firstEpoch; epoch <= epochs && !stopped; ++epoch) {
    std::mt19937_64 rng(static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull +
                        static_cast<uint64_t>(epoch));
    for (int64_t i = 0; i < data->trainCount(); ++i)
      order[i] = i;
    for (int64_t i = data->trainCount() - 1; i > 0; --i) // Fisher-Yates, portable
      std::swap(order[i], order[rng() % static_cast<uint64_t>(i + 1)]);
    auto intervalStart = std::chrono::steady_clock::now();
    int64_t intervalSamples = 0;
    for (int64_t step = epoch == firstEpoch ? firstStep : 0; step < stepsPerEpoch; ++step) {
      if (maxSteps && globalStep >= maxSteps) {
        // Mid-epoch: the state reached is saved here (with its place in the
        // epoch, so --resume goes on from it) and evaluated below.
        stopped = true;
        if (savedAtStep != globalStep)
          AMPRT_RETURN_IF_ERROR(saveCheckpoint(epoch, step));
        break;
      }
      AMPRT_RETURN_IF_ERROR(
          session->step(data->trainBatch(order.data() + step * globalBatch + shard)));
      AMPRT_RETURN_IF_ERROR(stepMetrics.read(*session));
      ++globalStep;
      reportNonFinite(*session, globalStep, progress);
      intervalSamples += globalBatch;
      bool last = step + 1 == stepsPerEpoch;
      if (last || (checkpointEvery && globalStep % checkpointEvery == 0))
        AMPRT_RETURN_IF_ERROR(saveCheckpoint(epoch, step + 1));
      if (!writer || (globalStep % logEvery != 0 && !last))
        continue;
      double rate = intervalSamples / seconds(intervalStart);
      if (progress)
        drawProgress(epoch, epochs, step + 1, stepsPerEpoch, session->loss(), rate);
      std::string scoreFields;
      if (last) {
        AMPRT_RETURN_IF_ERROR(data->evaluate(*session, &scores));
        evaluatedAtStep = globalStep;
        scoreFields = ", " + scoreJson(scores);
        if (progress)
          std::fprintf(stderr, "%s\n", scoreText(scores).c_str());
      }
      if (metrics) {
        std::fprintf(metrics.get(),
                     "{\"epoch\": %lld, \"step\": %lld, \"loss\": %s, \"samples_per_s\": %.1f%s%s}\n",
                     (long long)epoch, (long long)globalStep, jsonNumber(session->loss()).c_str(), rate,
                     stepMetrics.json().c_str(), scoreFields.c_str());
        std::fflush(metrics.get());
      }
      intervalStart = std::chrono::steady_clock::now();
      intervalSamples = 0;
    }
  }
  if (!writer)
    return Status::ok();
  if (evaluatedAtStep != globalStep) // stopped by --max-steps inside an epoch
    AMPRT_RETURN_IF_ERROR(data->evaluate(*session, &scores));
  std::printf("trained %lld steps; final loss %.4f; %s\n", (long long)globalStep,
              session->loss(), scoreText(scores).c_str());
  return Status::ok();
}

std::string fileName(std::string name) {
  std::replace(name.begin(), name.end(), '/', '_');
  return name;
}

/// The --feed NAME=FILE.npy arguments, read into memory.
struct Feeds {
  std::vector<amprun::NpyArray> arrays;
  std::vector<Feed> feeds;
};

/// Reads the feeds; each must have the element type of the program's input
/// it names (an f32 array fed to int32 ids has their byte count too).
Status readFeeds(const Args &args, const Session &session, Program program, Feeds *result) {
  auto range = args.flags.equal_range("feed");
  for (auto it = range.first; it != range.second; ++it)
    if (it->second.find('=') == std::string::npos)
      return Status::error("--feed expects NAME=FILE.npy");
  result->arrays.resize(std::distance(range.first, range.second));
  size_t index = 0;
  for (auto it = range.first; it != range.second; ++it, ++index) {
    auto eq = it->second.find('=');
    AMPRT_RETURN_IF_ERROR(amprun::readNpy(it->second.substr(eq + 1), &result->arrays[index]));
    std::string name = it->second.substr(0, eq);
    for (const auto &info : session.inputs(program))
      if (info.name == name && info.dtype != result->arrays[index].dtype)
        return Status::error("--feed " + name + ": the array is " +
                             amprt::dtypeName(result->arrays[index].dtype) +
                             ", the plan's input is " + amprt::dtypeName(info.dtype));
    result->feeds.push_back({it->second.substr(0, eq), result->arrays[index].bytes.data(),
                             result->arrays[index].bytes.size()});
  }
  return Status::ok();
}

/// Writes `info`'s tensor, read through `read`, to DIR/NAME.npy; gradients
/// (named after their parameters) get a ".grad" suffix.
template <typename Read>
Status dumpTensor(const std::string &dump, const TensorInfo &info, Read read) {
  amprun::NpyArray array;
  array.dtype = info.dtype;
  array.shape = info.shape;
  array.bytes.resize(info.bytes());
  AMPRT_RETURN_IF_ERROR(read(array.bytes.data(), array.bytes.size()));
  std::string suffix = info.role == "grad" ? ".grad.npy" : ".npy";
  return amprun::writeNpy(dump + "/" + fileName(info.name) + suffix, array);
}

/// --dump's folder, created (with its parents) when missing.
Status dumpDirectory(const Args &args, std::string *dump) {
  *dump = args.get("dump");
  if (dump->empty())
    return Status::error("--dump DIR is required");
  std::error_code error;
  std::filesystem::create_directories(*dump, error);
  if (error)
    return Status::error(*dump + ": cannot create: " + error.message());
  return Status::ok();
}

Status dumpOutputs(const Session &session, Program program, const std::string &dump) {
  for (const auto &info : session.outputs(program))
    AMPRT_RETURN_IF_ERROR(dumpTensor(dump, info, [&](void *data, size_t bytes) {
      return session.readOutput(program, info.name, data, bytes);
    }));
  return Status::ok();
}

/// The feeds of step `step`: a feed holding `steps` batches gives its
/// step-th one; a feed holding one batch is used for every step.
Status feedsForStep(const Session &session, const Feeds &feeds, int64_t steps, int64_t step,
                    std::vector<Feed> *result) {
  result->clear();
  for (const Feed &feed : feeds.feeds) {
    size_t bytes = 0;
    for (const auto &info : session.inputs(Program::Train))
      if (info.name == feed.name)
        bytes = info.bytes();
    if (bytes == 0 || (feed.bytes != bytes && feed.bytes != bytes * steps))
      return Status::error("--feed " + feed.name + ": holds " + std::to_string(feed.bytes) +
                           " bytes; the step needs " + std::to_string(bytes) +
                           " (one batch) or " + std::to_string(bytes * steps) +
                           " (one batch per step)");
    const char *data = static_cast<const char *>(feed.data);
    result->push_back({feed.name, feed.bytes == bytes ? data : data + step * bytes, bytes});
  }
  return Status::ok();
}

Status stepCommand(const Args &args) {
  std::unique_ptr<Session> session;
  AMPRT_RETURN_IF_ERROR(createSession(args, &session));
  int64_t steps;
  AMPRT_RETURN_IF_ERROR(args.getInt("steps", 1, &steps));
  std::string dump;
  AMPRT_RETURN_IF_ERROR(dumpDirectory(args, &dump));
  Feeds feeds;
  AMPRT_RETURN_IF_ERROR(readFeeds(args, *session, Program::Train, &feeds));
  MetricsFile metrics(nullptr, &std::fclose);
  AMPRT_RETURN_IF_ERROR(openMetrics(args, &metrics));
  if (std::string resume = args.get("resume"); !resume.empty())
    AMPRT_RETURN_IF_ERROR(session->loadCheckpoint(resume));
  StepMetrics stepMetrics(*session);
  std::vector<Feed> stepFeeds;
  for (int64_t s = 0; s < steps; ++s) {
    AMPRT_RETURN_IF_ERROR(feedsForStep(*session, feeds, steps, s, &stepFeeds));
    if (Status stepped = session->step(stepFeeds); !stepped)
      return Status::error(stepped.message() + " (step " + std::to_string(s + 1) + " of " +
                           std::to_string(steps) + ")");
    AMPRT_RETURN_IF_ERROR(stepMetrics.read(*session));
    reportNonFinite(*session, s + 1, false);
    if (metrics)
      std::fprintf(metrics.get(), "{\"step\": %lld, \"loss\": %s%s}\n", (long long)s + 1,
                   jsonNumber(session->loss()).c_str(), stepMetrics.json().c_str());
  }
  if (std::string path = args.get("checkpoint"); !path.empty())
    AMPRT_RETURN_IF_ERROR(session->saveCheckpoint(path));
  if (steps > 0)
    AMPRT_RETURN_IF_ERROR(dumpOutputs(*session, Program::Train, dump));
  for (const auto &info : session->states())
    AMPRT_RETURN_IF_ERROR(dumpTensor(dump, info, [&](void *data, size_t bytes) {
      return session->readState(info.name, data, bytes);
    }));
  std::printf("ran %lld steps; loss %.6f; wrote outputs and state to %s\n", (long long)steps,
              session->loss(), dump.c_str());
  return Status::ok();
}

Status forwardCommand(const Args &args) {
  std::unique_ptr<Session> session;
  AMPRT_RETURN_IF_ERROR(createSession(args, &session));
  std::string dump;
  AMPRT_RETURN_IF_ERROR(dumpDirectory(args, &dump));
  Feeds feeds;
  AMPRT_RETURN_IF_ERROR(readFeeds(args, *session, Program::Eval, &feeds));
  AMPRT_RETURN_IF_ERROR(session->evaluate(feeds.feeds));
  AMPRT_RETURN_IF_ERROR(dumpOutputs(*session, Program::Eval, dump));
  std::printf("evaluated; wrote outputs to %s\n", dump.c_str());
  return Status::ok();
}

/// `text` as a JSON string literal.
std::string jsonString(const std::string &text) {
  std::string json = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      json += '\\';
      json += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      json += escaped;
    } else {
      json += static_cast<char>(c);
    }
  }
  return json + "\"";
}

/// A session with random batches of its plan's shapes, for `bench`.
struct BenchSubject {
  std::string plan;
  std::unique_ptr<Session> session;
  std::vector<std::vector<char>> storage;
  std::vector<Feed> feeds;
  int64_t batch = 0;
  std::vector<double> rates; // samples/s, one per repetition
};

Status prepareBench(const Args &args, const std::string &plan, int64_t seed,
                    BenchSubject *subject) {
  subject->plan = plan;
  AMPRT_RETURN_IF_ERROR(createSession(args, plan, &subject->session));
  Session &session = *subject->session;
  noteEmulation(session);
  // Random batches of the plan's shapes: speed does not depend on values.
  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  subject->storage.reserve(session.inputs(Program::Train).size());
  for (const auto &info : session.inputs(Program::Train)) {
    subject->storage.emplace_back(info.bytes());
    std::vector<char> &bytes = subject->storage.back();
    if (!amprt::isFloat(info.dtype)) {
      // Labels (and a language model's token ids) below the class count:
      // the last dimension of the logits, [batch, classes] or [batch, sequence, classes].
      int64_t classes = 10;
      for (const auto &out : session.outputs(Program::Eval))
        if (out.shape.size() >= 2)
          classes = out.shape.back();
      for (int64_t i = 0; i < info.numElements(); ++i) {
        auto label = static_cast<int64_t>(rng() % classes);
        if (info.dtype == amprt::DType::Bool)
          reinterpret_cast<uint8_t *>(bytes.data())[i] = static_cast<uint8_t>(label & 1);
        else if (info.dtype == amprt::DType::I32)
          reinterpret_cast<int32_t *>(bytes.data())[i] = static_cast<int32_t>(label);
        else
          reinterpret_cast<int64_t *>(bytes.data())[i] = label;
      }
    } else { // in the input's storage type (an exported model's may be bf16 or f16)
      std::vector<float> values(info.numElements());
      for (float &v : values)
        v = uniform(rng);
      bytes = amprun::toStorage(values, info.dtype);
    }
    if (info.role == "input")
      subject->batch = info.shape.empty() ? 1 : info.shape[0];
    subject->feeds.push_back({info.name, bytes.data(), bytes.size()});
  }
  return Status::ok();
}

/// Times `steps` steps of `subject` and records its samples/s.
Status timeSteps(BenchSubject &subject, int64_t steps) {
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i)
    AMPRT_RETURN_IF_ERROR(subject.session->step(subject.feeds));
  // Steps on a GPU are queued: the time counts once they have all run.
  AMPRT_RETURN_IF_ERROR(subject.session->synchronize());
  subject.rates.push_back(steps * subject.batch / seconds(start));
  return Status::ok();
}

double median(std::vector<double> values) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void printProfile(const Session &session) {
  auto times = session.kernelProfile(Program::Train);
  std::sort(times.begin(), times.end(),
            [](const auto &a, const auto &b) { return a.seconds > b.seconds; });
  double total = 0;
  for (const auto &t : times)
    total += t.seconds;
  std::fprintf(stderr, "%-28s %-24s %-22s %9s %6s\n", "kernel", "node", "types", "ms/step", "share");
  for (const auto &t : times)
    std::fprintf(stderr, "%-28s %-24s %-22s %9.3f %5.1f%%\n", t.op.c_str(), t.node.c_str(),
                 t.types.c_str(), 1e3 * t.seconds / std::max<int64_t>(t.calls, 1),
                 100 * t.seconds / std::max(total, 1e-12));
}

Status bench(const Args &args) {
  int64_t steps, warmup, repeat, seed;
  AMPRT_RETURN_IF_ERROR(args.getInt("steps", 20, &steps));
  AMPRT_RETURN_IF_ERROR(args.getInt("warmup", 5, &warmup));
  AMPRT_RETURN_IF_ERROR(args.getInt("repeat", 5, &repeat));
  AMPRT_RETURN_IF_ERROR(args.getInt("seed", 0, &seed));
  // The plan, then each --versus plan: one repetition times each in turn, so
  // that they share the machine's state (its drift, other loads) and their
  // ratio is measured within each repetition.
  std::vector<std::string> plans = {args.plan};
  for (auto [it, end] = args.flags.equal_range("versus"); it != end; ++it)
    plans.push_back(it->second);
  if (plans.size() > 1 && args.flags.count("profile"))
    return Status::error("--profile times one plan; leave out --versus");
  std::vector<BenchSubject> subjects(plans.size());
  for (size_t i = 0; i < plans.size(); ++i)
    AMPRT_RETURN_IF_ERROR(prepareBench(args, plans[i], seed, &subjects[i]));
  for (BenchSubject &subject : subjects) {
    for (int64_t i = 0; i < warmup; ++i)
      AMPRT_RETURN_IF_ERROR(subject.session->step(subject.feeds));
    AMPRT_RETURN_IF_ERROR(subject.session->synchronize());
  }
  for (int64_t r = 0; r < repeat; ++r)
    for (BenchSubject &subject : subjects)
      AMPRT_RETURN_IF_ERROR(timeSteps(subject, steps));
  if (args.flags.count("profile"))
    printProfile(*subjects[0].session);
  for (BenchSubject &subject : subjects) {
    Session &session = *subject.session;
    // What the plan keeps in memory: persistent state plus the training arena.
    int64_t planBytes = session.arenaBytes(Program::Train);
    for (const auto &state : session.states())
      planBytes += static_cast<int64_t>(state.bytes());
    std::string planField, versus;
    if (plans.size() > 1)
      planField = ", \"plan\": " + jsonString(subject.plan);
    if (&subject != &subjects[0]) {
      std::vector<double> ratios;
      for (size_t r = 0; r < subject.rates.size(); ++r)
        ratios.push_back(subject.rates[r] / subjects[0].rates[r]);
      versus = ", \"median_ratio_to_first\": " + std::to_string(median(ratios));
    }
    auto [lowest, highest] = std::minmax_element(subject.rates.begin(), subject.rates.end());
    std::printf("{\"batch\": %lld, \"steps\": %lld, \"repeat\": %lld, \"median_samples_per_s\": "
                "%.1f, \"min_samples_per_s\": %.1f, \"max_samples_per_s\": %.1f, "
                "\"arena_bytes\": %lld, \"plan_bytes\": %lld, \"device\": \"%s\"%s%s}\n",
                (long long)subject.batch, (long long)steps, (long long)repeat,
                median(subject.rates), subject.rates.empty() ? 0 : *lowest,
                subject.rates.empty() ? 0 : *highest,
                (long long)session.arenaBytes(Program::Train), (long long)planBytes,
                session.deviceName(), planField.c_str(), versus.c_str());
  }
  return Status::ok();
}

/// Loads --checkpoint into the session, when given.
Status loadCheckpointFlag(const Args &args, Session &session) {
  if (std::string path = args.get("checkpoint"); !path.empty())
    return session.loadCheckpoint(path);
  return Status::ok();
}

Status accuracyCommand(const Args &args) {
  std::unique_ptr<Session> session;
  AMPRT_RETURN_IF_ERROR(createSession(args, &session));
  AMPRT_RETURN_IF_ERROR(loadCheckpointFlag(args, *session));
  std::unique_ptr<amprun::TrainingData> data;
  AMPRT_RETURN_IF_ERROR(amprun::TrainingData::open(args.get("data"), *session, false, &data));
  amprun::Scores scores;
  AMPRT_RETURN_IF_ERROR(data->evaluate(*session, &scores));
  std::printf("{%s}\n", scoreJson(scores).c_str());
  return Status::ok();
}

Status exportCommand(const Args &args) {
  std::unique_ptr<Session> session;
  AMPRT_RETURN_IF_ERROR(createSession(args, &session));
  AMPRT_RETURN_IF_ERROR(loadCheckpointFlag(args, *session));
  std::string onnxPath = args.get("onnx"), output = args.get("output");
  std::string ortCheckpoint = args.get("ort-checkpoint");
  if (!ortCheckpoint.empty() && !output.empty() && onnxPath.empty()) {
    AMPRT_RETURN_IF_ERROR(amprun::exportOrtCheckpoint(*session, ortCheckpoint, output));
    std::printf("wrote %s\n", output.c_str());
    return Status::ok();
  }
  if (onnxPath.empty() || output.empty() || !ortCheckpoint.empty())
    return Status::error("export needs --onnx MODEL.onnx (the model the plan was compiled "
                         "from) or --ort-checkpoint CHECKPOINT (of the onnxruntime-training "
                         "artifact set it was compiled from), and --output FILE");
  AMPRT_RETURN_IF_ERROR(
      amprun::exportOnnx(*session, onnxPath, args.get("precision", "fp32"), output));
  std::printf("wrote %s\n", output.c_str());
  return Status::ok();
}

Status info(const Args &args) {
  std::unique_ptr<Session> session;
  AMPRT_RETURN_IF_ERROR(createSession(args, &session));
  if (std::string path = args.get("checkpoint"); !path.empty()) {
    std::map<std::string, std::string> metadata;
    AMPRT_RETURN_IF_ERROR(session->loadCheckpoint(path, &metadata));
    std::printf("checkpoint %s: loads into the plan", path.c_str());
    for (const auto &[key, value] : metadata)
      std::printf("; %s %s", key.c_str(), value.c_str());
    std::printf("\n");
  }
  auto print = [](const char *title, const std::vector<TensorInfo> &infos) {
    std::printf("%s:\n", title);
    for (const auto &t : infos) {
      std::printf("  %-40s %-6s %s [", t.name.c_str(), t.role.c_str(), amprt::dtypeName(t.dtype));
      for (size_t i = 0; i < t.shape.size(); ++i)
        std::printf("%s%lld", i ? ", " : "", (long long)t.shape[i]);
      std::printf("]\n");
    }
  };
  print("train inputs", session->inputs(Program::Train));
  print("train outputs", session->outputs(Program::Train));
  print("eval inputs", session->inputs(Program::Eval));
  print("eval outputs", session->outputs(Program::Eval));
  print("state", session->states());
  std::printf("arena bytes: train %lld, eval %lld\n",
              (long long)session->arenaBytes(Program::Train),
              (long long)session->arenaBytes(Program::Eval));
  return Status::ok();
}

/// The CPU (and what runs natively on it), then the usable GPUs.
Status devicesCommand(const Args &) {
  amprt::CpuCapabilities cpu = amprt::cpuCapabilities();
  std::printf("cpu: %s (oneDNN ISA %s)\n", cpu.model.c_str(), cpu.onednnIsa.c_str());
  std::printf("  fp32 GEMMs: native\n");
  for (auto [name, native] : {std::pair{"bf16", cpu.bf16GemmNative},
                              std::pair{"fp16", cpu.f16GemmNative}})
    std::printf("  %s GEMMs: %s\n", name,
                native ? "native (oneDNN, f32 accumulation)"
                       : "emulated (operands widened to f32, f32 GEMM, rounded once: f32 speed)");
  if (cpu.bf16DotRate > 0)
    std::printf("  bf16 dot products: %.2fx the f32 FMA rate (measured)\n", cpu.bf16DotRate);
  if (cpu.bf16GemmNative && cpu.bf16NativeFaster)
    std::printf("  bf16 with --cpu-gemms fastest: native\n");
  else if (cpu.bf16GemmNative)
    std::printf("  bf16 with --cpu-gemms fastest: GEMMs, and convolutions on maps of %lld or "
                "more positions, widened to f32 (faster here)\n",
                (long long)cpu.nativeConvolutionMapBelow);
  std::printf("  bf16/fp16 conversions: %s\n",
              cpu.vectorConversions ? "bf16 vectorised, fp16 F16C"
                                    : "bf16 vectorised, fp16 scalar (no AVX2/F16C)");
  std::string why;
  for (const auto &device : amprt::listDevices(&why))
    if (device != "cpu")
      std::printf("%s\n", device.c_str());
  if (!why.empty())
    std::printf("no GPU: %s\n", why.c_str());
  return Status::ok();
}

} // namespace

int main(int argc, char **argv) {
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::printf("%s", usage().c_str());
    return 0;
  }
  if (argc == 2 && std::string(argv[1]) == "--version") {
    std::printf("amp-run (AMP-MLIR) %s\n", AMP_VERSION);
    return 0;
  }
  std::unique_ptr<amprun::Ranks> ranks;
  if (Status joined = amprun::Ranks::join(&argc, &argv, &ranks); !joined) {
    std::fprintf(stderr, "amp-run: error: %s\n", joined.message().c_str());
    return 1;
  }
  Args args;
  args.ranks = ranks.get();
  Status status = parseArgs(argc, argv, &args);
  for (auto &flag : args.flags) // per-rank files: --feed input=shard{rank}.npy
    flag.second = ranks->substitute(flag.second);
  if (status.isOk() && args.help) {
    std::printf("%s", usage(args.command).c_str());
    return 0;
  }
  if (status.isOk()) try {
    status = args.command->run(args);
  } catch (const std::bad_alloc &) {
    status = Status::error("out of memory (does the plan ask for more than this machine has?)");
  }
  if (!status.isOk()) {
    std::string where = ranks->size() > 1 ? " (rank " + std::to_string(ranks->rank()) + " of " +
                                                std::to_string(ranks->size()) + ")"
                                          : "";
    std::fprintf(stderr, "amp-run: error%s: %s\n%s", where.c_str(), status.message().c_str(),
                 args.plan.empty() ? usage(args.command).c_str() : "");
    std::fflush(stderr);
    ranks->abortJob(1); // the other ranks would wait for this one's collectives
    return 1;
  }
  return 0;
}
