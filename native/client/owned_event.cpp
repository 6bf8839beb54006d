#include "hyperstreams/native/owned_event.hpp"

namespace hyperstreams::native {

owned_event::owned_event(const client_event& e)
    : kind(e.kind),
      op(e.op),
      state(e.state),
      previous(e.previous),
      flags(e.flags),
      ends_operation(e.ends_operation),
      ends_subscription(e.ends_subscription),
      code(e.code),
      id(e.id),
      subscription(e.subscription),
      epoch(e.epoch),
      seq(e.seq),
      count(e.count),
      name(e.name),
      method(e.method),
      text(e.text),
      payload(e.payload.begin(), e.payload.end()) {
    // The engine checked these bodies: they decode.
    if (e.kind == event_kind::presence) {
        presence_list_body list;
        (void)decode_body(e.payload, list);
        presence_count = list.count;
        for (const presence_member& m : list.members)
            members.push_back({std::string(m.address), std::string(m.subject), std::string(m.name)});
    } else if (e.kind == event_kind::join || e.kind == event_kind::leave) {
        presence_member m;
        (void)decode_body(e.payload, m);
        presence_count = 1;
        members.push_back({std::string(m.address), std::string(m.subject), std::string(m.name)});
    }
    if (e.services == nullptr) return;
    for (const service_info& s : e.services->services) {
        service copy{std::string(s.name), s.instances, {}};
        for (const method_info& m : s.methods) copy.methods.emplace_back(std::string(m.name), m.kind);
        services.push_back(std::move(copy));
    }
}

}  // namespace hyperstreams::native
