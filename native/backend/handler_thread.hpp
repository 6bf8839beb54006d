// The default place handlers run: one thread draining a FIFO of tasks, so
// events reach the application in the order the I/O thread saw them.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace hyperstreams::backend::detail {

class handler_thread {
public:
    handler_thread() : thread_([s = state_] { run(*s); }), id_(thread_.get_id()) {}
    ~handler_thread() { stop(); }
    handler_thread(const handler_thread&) = delete;
    handler_thread& operator=(const handler_thread&) = delete;

    void post(std::function<void()> task) {
        {
            std::lock_guard lock(state_->mu);
            if (state_->stopping) return;
            state_->tasks.push_back(std::move(task));
        }
        state_->cv.notify_one();
    }

    // Runs what is queued, then joins. From the handler thread itself (a
    // client destroyed by one of its own handlers) it only asks the loop to
    // end: a thread cannot join itself. The loop then goes on with its own
    // share of the state, after this object is gone.
    void stop() {
        {
            std::lock_guard lock(state_->mu);
            state_->stopping = true;
        }
        state_->cv.notify_one();
        if (!thread_.joinable()) return;
        if (std::this_thread::get_id() == id_)
            thread_.detach();
        else
            thread_.join();
    }

    bool on_this_thread() const noexcept { return std::this_thread::get_id() == id_; }

private:
    struct state {
        std::mutex mu;
        std::condition_variable cv;
        std::deque<std::function<void()>> tasks;
        bool stopping = false;
    };

    static void run(state& s) {
        std::unique_lock lock(s.mu);
        for (;;) {
            s.cv.wait(lock, [&s] { return s.stopping || !s.tasks.empty(); });
            if (s.tasks.empty()) return;
            std::function<void()> task = std::move(s.tasks.front());
            s.tasks.pop_front();
            lock.unlock();
            task();
            task = nullptr;  // destroy captured state (replies, writers) outside the lock
            lock.lock();
        }
    }

    // Shared with the thread, which may outlive this object (see stop()).
    const std::shared_ptr<state> state_ = std::make_shared<state>();
    std::thread thread_;
    const std::thread::id id_;
};

}  // namespace hyperstreams::backend::detail
