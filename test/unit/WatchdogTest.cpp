//===- WatchdogTest.cpp - the deadline of calls that cannot be abandoned --===//

#include "Watchdog.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace {

using namespace std::chrono_literals;

struct Calls {
  std::mutex mutex;
  std::vector<std::string> messages;
  std::vector<std::chrono::steady_clock::time_point> times;
  void record(const std::string &message) {
    std::lock_guard<std::mutex> lock(mutex);
    messages.push_back(message);
    times.push_back(std::chrono::steady_clock::now());
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mutex);
    return messages.size();
  }
};

TEST(Watchdog, CallsTheHandlerOnceWhenAWatchedCallOverruns) {
  Calls calls;
  amprt::Watchdog dog(0.2, [&](const std::string &m) { calls.record(m); });
  auto start = std::chrono::steady_clock::now();
  {
    amprt::Watchdog::Watch watch(dog, "stuck in the all-reduce");
    std::this_thread::sleep_for(1000ms); // five timeouts long: room for a busy machine
  }
  ASSERT_EQ(calls.count(), 1u);
  EXPECT_EQ(calls.messages[0], "stuck in the all-reduce");
  double after = std::chrono::duration<double>(calls.times[0] - start).count();
  EXPECT_GE(after, 0.2);
  EXPECT_LT(after, 1.0);
}

TEST(Watchdog, StaysQuietForCallsThatFinishInTime) {
  Calls calls;
  amprt::Watchdog dog(0.5, [&](const std::string &m) { calls.record(m); });
  for (int i = 0; i < 8; ++i) { // 8 x 100 ms: longer than the timeout in total, not each
    amprt::Watchdog::Watch watch(dog, "call " + std::to_string(i));
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(400ms); // idle, unwatched
  EXPECT_EQ(calls.count(), 0u);
}

TEST(Watchdog, AWatchAfterAnOverrunIsTimedAfresh) {
  Calls calls;
  amprt::Watchdog dog(0.2, [&](const std::string &m) { calls.record(m); });
  {
    amprt::Watchdog::Watch watch(dog, "first");
    std::this_thread::sleep_for(700ms);
  }
  {
    amprt::Watchdog::Watch watch(dog, "second, in time");
    std::this_thread::sleep_for(50ms);
  }
  {
    amprt::Watchdog::Watch watch(dog, "third");
    std::this_thread::sleep_for(700ms);
  }
  ASSERT_EQ(calls.count(), 2u);
  EXPECT_EQ(calls.messages[0], "first");
  EXPECT_EQ(calls.messages[1], "third");
}

TEST(Watchdog, WithoutATimeoutOrHandlerDoesNothing) {
  Calls calls;
  amprt::Watchdog none(0, [&](const std::string &m) { calls.record(m); });
  amprt::Watchdog silent(0.05, {});
  // Longer than the clock can add (int64 nanoseconds): no limit, not an
  // overflow into a deadline in the past.
  amprt::Watchdog forever(1e12, [&](const std::string &m) { calls.record(m); });
  {
    amprt::Watchdog::Watch a(none, "a"), b(silent, "b"), c(forever, "c");
    std::this_thread::sleep_for(150ms);
  }
  EXPECT_EQ(calls.count(), 0u);
}

} // namespace
