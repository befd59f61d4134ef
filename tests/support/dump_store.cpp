// dump_store STORE: prints every entry of every database of a store — the
// main database and each named one — straight from LMDB, one line each:
// "DATABASE KEY VALUE" (hex). Run as its own process, so that a test can
// compare a store it has open before and after an operation that must
// write nothing.
#include <lmdb.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

std::string hex(const MDB_val& v) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  const auto* p = static_cast<const unsigned char*>(v.mv_data);
  for (std::size_t i = 0; i < v.mv_size; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

int fail(const char* what, int rc) {
  std::fprintf(stderr, "dump_store: %s: %s\n", what, mdb_strerror(rc));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: dump_store STORE\n");
    return 2;
  }
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc == 0) rc = mdb_env_set_maxdbs(env, 16);
  if (rc == 0) rc = mdb_env_open(env, argv[1], MDB_RDONLY, 0600);
  if (rc != 0) return fail("open", rc);
  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn)) != 0) return fail("txn", rc);
  MDB_dbi main_db;
  if ((rc = mdb_dbi_open(txn, nullptr, 0, &main_db)) != 0) return fail("main", rc);
  std::vector<std::pair<std::string, MDB_dbi>> dbs{{"(main)", main_db}};
  MDB_cursor* cursor = nullptr;
  MDB_val k, v;
  if ((rc = mdb_cursor_open(txn, main_db, &cursor)) != 0) return fail("cursor", rc);
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    std::string name(static_cast<const char*>(k.mv_data), k.mv_size);
    MDB_dbi dbi;
    if (mdb_dbi_open(txn, name.c_str(), 0, &dbi) == 0) dbs.emplace_back(name, dbi);
  }
  mdb_cursor_close(cursor);
  for (const auto& [name, dbi] : dbs) {
    if ((rc = mdb_cursor_open(txn, dbi, &cursor)) != 0) return fail("cursor", rc);
    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
      // In the main database, a named database's value is its record (root
      // page, depth, entries): any write to it changes that too.
      std::printf("%s %s %s\n", name.c_str(), hex(k).c_str(), hex(v).c_str());
    }
    if (rc != MDB_NOTFOUND) return fail("read", rc);
    mdb_cursor_close(cursor);
  }
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return 0;
}
