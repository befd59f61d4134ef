"""Which page of an LMDB data file is what: a small reader of LMDB 0.9's
on-disk layout (docs/formats.md, "The LMDB file") for tests that damage a
store one page class at a time. It trusts the file: use it on a store before
damaging it."""

import struct

P_BRANCH, P_LEAF, P_OVERFLOW, P_META, P_LEAF2 = 0x01, 0x02, 0x04, 0x08, 0x20
F_BIGDATA, F_SUBDATA, F_DUPDATA = 0x01, 0x02, 0x04
HEADER = 16


class Page:
    def __init__(self, number, kind, database):
        self.number = number  # page number
        # "meta", "branch", "leaf", "leaf2" (the fixed-size values of a set of
        # duplicates), "overflow" (a run's first page), "overflow data",
        # "free list", "free"
        self.kind = kind
        self.database = database  # "main", "free list" or a named database ("" for meta and free pages)
        self.keys = []  # the keys of a leaf's nodes

    def __repr__(self):
        return f"page {self.number} ({self.kind} of {self.database or '-'})"


class DataFile:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.bytes = f.read()
        self.page_size = struct.unpack_from("<I", self.bytes, 40)[0]
        metas = [self._meta(0), self._meta(1)]
        self.meta = metas[1] if metas[1]["txnid"] > metas[0]["txnid"] else metas[0]
        self.pages = {0: Page(0, "meta", ""), 1: Page(1, "meta", "")}
        self.free = []
        self._tree(self.meta["free_root"], "free list")
        self._tree(self.meta["main_root"], "main")
        for number in self.free:
            self.pages.setdefault(number, Page(number, "free", ""))

    def _meta(self, number):
        base = number * self.page_size if number else 0
        free_root, = struct.unpack_from("<Q", self.bytes, base + 80)
        main_root, = struct.unpack_from("<Q", self.bytes, base + 128)
        last_page, txnid = struct.unpack_from("<QQ", self.bytes, base + 136)
        return {"free_root": free_root, "main_root": main_root, "last_page": last_page, "txnid": txnid}

    def offset(self, number):
        return number * self.page_size

    def header(self, number):
        pgno, _pad, flags, lower, upper = struct.unpack_from("<QHHHH", self.bytes, self.offset(number))
        return pgno, flags, lower, upper

    def _nodes(self, number):
        _, _, lower, _ = self.header(number)
        base = self.offset(number)
        for i in range((lower - HEADER) // 2):
            ptr, = struct.unpack_from("<H", self.bytes, base + HEADER + 2 * i)
            yield base + ptr

    def _tree(self, root, database):
        if root == 0xFFFFFFFFFFFFFFFF:
            return
        _, flags, _, _ = self.header(root)
        if flags & P_BRANCH:
            self.pages[root] = Page(root, "branch", database)
            for node in self._nodes(root):
                lo, hi, top = struct.unpack_from("<HHH", self.bytes, node)
                self._tree(lo | hi << 16 | top << 32, database)
            return
        kind = "free list" if database == "free list" else "leaf2" if flags & P_LEAF2 else "leaf"
        page = Page(root, kind, database)
        self.pages[root] = page
        if flags & P_LEAF2:  # fixed-size keys, packed: no nodes
            return
        for node in self._nodes(root):
            lo, hi, nflags, ksize = struct.unpack_from("<HHHH", self.bytes, node)
            size = lo | hi << 16
            key = self.bytes[node + 8:node + 8 + ksize]
            page.keys.append(key)
            data = node + 8 + ksize
            if nflags & F_BIGDATA:
                first, = struct.unpack_from("<Q", self.bytes, data)
                count, = struct.unpack_from("<I", self.bytes, self.offset(first) + 12)
                self.pages[first] = Page(first, "overflow", database)
                for n in range(first + 1, first + count):
                    self.pages[n] = Page(n, "overflow data", database)
                value = self.bytes[self.offset(first) + HEADER:self.offset(first) + HEADER + size]
            else:
                value = self.bytes[data:data + size]
            if database == "free list":
                count, = struct.unpack_from("<Q", value, 0)
                self.free.extend(struct.unpack_from(f"<{count}Q", value, 8))
            elif nflags & F_SUBDATA:
                sub_root, = struct.unpack_from("<Q", value, 40)
                self._tree(sub_root, key.decode() if database == "main" else database)

    def of(self, kind, database=None):
        """The pages of `kind` (of `database`, when given), in page order."""
        return [p for n, p in sorted(self.pages.items())
                if p.kind == kind and (database is None or p.database == database)]

    def leaf_node_offsets(self, number):
        """File offsets of the nodes of leaf page `number`."""
        return list(self._nodes(number))

    def free_list_entry(self, number):
        """The file offset of the first page number listed by free-list leaf
        `number` (inline data only), and that page number; None when the
        list is in an overflow page."""
        for node in self._nodes(number):
            lo, hi, nflags, ksize = struct.unpack_from("<HHHH", self.bytes, node)
            if nflags & F_BIGDATA:
                continue
            at = node + 8 + ksize + 8
            return at, struct.unpack_from("<Q", self.bytes, at)[0]
        return None


def event_sequence(key):
    """The sequence of a 20-byte event key."""
    return struct.unpack_from(">Q", key, 8)[0]


def flip(path, offset, mask=0x01):
    """Flips the bits of `mask` in the byte at `offset` of the file."""
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ mask]))


def write_u64(path, offset, value):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack("<Q", value))
