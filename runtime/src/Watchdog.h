//===- Watchdog.h - a deadline for calls that cannot be abandoned -*- C++ -*-===//
//
// A blocking call that may never return (an MPI collective a rank stopped
// inside) cannot be interrupted; a Watchdog's thread notices when one has
// run past its timeout and calls the embedder's handler with a message,
// which usually ends the process.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_WATCHDOG_H
#define AMPRT_WATCHDOG_H

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace amprt {

/// Calls `stuck` (from its own thread) when a watched call has run longer
/// than the timeout; does nothing without a handler or a timeout.
class Watchdog {
public:
  /// A timeout of 0, or one too long for the clock (over a century), is none.
  Watchdog(double timeout, std::function<void(const std::string &)> stuck)
      : timeout(timeout), stuck(std::move(stuck)) {
    if (timeout > 0 && timeout < 3e9 && this->stuck)
      thread = std::thread([this] { run(); });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    changed.notify_all();
    if (thread.joinable())
      thread.join();
  }

  /// Watches the call in progress while it lives.
  class Watch {
  public:
    Watch(Watchdog &dog, std::string message) : dog(dog) {
      if (!dog.thread.joinable())
        return;
      std::lock_guard<std::mutex> lock(dog.mutex);
      dog.message = std::move(message);
      dog.started = std::chrono::steady_clock::now();
      dog.watching = true;
      ++dog.generation;
      dog.changed.notify_all();
    }
    ~Watch() {
      if (!dog.thread.joinable())
        return;
      std::lock_guard<std::mutex> lock(dog.mutex);
      dog.watching = false;
      dog.changed.notify_all();
    }

  private:
    Watchdog &dog;
  };

private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!stopping) {
      changed.wait(lock, [&] { return stopping || watching; });
      uint64_t watched = generation;
      auto deadline = started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(timeout));
      bool over = !changed.wait_until(lock, deadline, [&] {
        return stopping || !watching || generation != watched;
      });
      if (over) {
        std::string text = message;
        lock.unlock();
        stuck(text); // the handler usually ends the process
        lock.lock();
        changed.wait(lock, [&] { return stopping || generation != watched; });
      }
    }
  }

  double timeout;
  std::function<void(const std::string &)> stuck;
  std::mutex mutex;
  std::condition_variable changed;
  bool watching = false, stopping = false;
  uint64_t generation = 0;
  std::chrono::steady_clock::time_point started;
  std::string message;
  std::thread thread; // last: started once the rest is ready
};

} // namespace amprt

#endif // AMPRT_WATCHDOG_H
