// Appends events and reads them back through the public API only.
#include <cstdio>
#include <cstring>

#include <lighthouse/lighthouse.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer STORE_DIR\n");
    return 2;
  }
  try {
    auto store = lighthouse::Store::open(argv[1]);
    lighthouse::EventData e;
    e.type = "ConsumerChecked";
    e.aggregate = "consumer-1";
    e.content_type = lighthouse::ContentType::json;
    e.data = R"({"ok":true})";
    auto first = store.append(e, lighthouse::ExpectedVersion::no_stream());
    auto second = store.append(e, lighthouse::ExpectedVersion::exact(1));
    auto back = store.get(second.events[0].id);
    if (back.data != e.data || back.aggregate_version != 2 ||
        !(first.events[0].id < second.events[0].id)) {
      std::fprintf(stderr, "consumer: read back something else\n");
      return 1;
    }
    std::printf("consumer ok: %s (lighthouse %s)\n", back.id.to_string().c_str(),
                LIGHTHOUSE_VERSION);
    return 0;
  } catch (const lighthouse::Error& error) {
    std::fprintf(stderr, "consumer: %s\n", error.what());
    return 1;
  }
}
