// The default place handlers run: one thread draining a FIFO of tasks, so
// events reach the application in the order the I/O thread saw them.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace hyperstreams::backend::detail {

class handler_thread {
public:
    handler_thread() : thread_([this] { run(); }) {}
    ~handler_thread() { stop(); }
    handler_thread(const handler_thread&) = delete;
    handler_thread& operator=(const handler_thread&) = delete;

    void post(std::function<void()> task) {
        {
            std::lock_guard lock(mu_);
            if (stopping_) return;
            tasks_.push_back(std::move(task));
        }
        cv_.notify_one();
    }

    // Runs what is queued, then joins. From the handler thread itself it only
    // asks the loop to end (a thread cannot join itself).
    void stop() {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        cv_.notify_one();
        if (!thread_.joinable()) return;
        if (std::this_thread::get_id() == thread_.get_id())
            thread_.detach();
        else
            thread_.join();
    }

    bool on_this_thread() const noexcept { return std::this_thread::get_id() == thread_.get_id(); }

private:
    void run() {
        std::unique_lock lock(mu_);
        for (;;) {
            cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
            if (tasks_.empty()) return;
            std::function<void()> task = std::move(tasks_.front());
            tasks_.pop_front();
            lock.unlock();
            task();
            task = nullptr;  // destroy captured state (replies, writers) outside the lock
            lock.lock();
        }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> tasks_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace hyperstreams::backend::detail
