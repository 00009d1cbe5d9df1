"""System test of a graceful leave that hands over values larger than the internal RPC's frame
(test_leave.py has the other leave cases and the helpers).

LargeValueLeaveTest: node 2 of 3 holds a 70 MiB string and a 70 MiB hash (70 fields of 1 MiB),
each larger than the internal RPC's 64 MiB frame, plus 3000 small keys spread over the cluster.
`shoal leave` on node 2: it exits with status 0 after handing everything over, and every key is
readable from the two others, the large values byte-exact.

Its own ctest test (system_leave_large) because it moves 140 MiB: the release and ASan + UBSan
builds run it; the ThreadSanitizer stage leaves it out (its threads do what they do in every
other leave, at a fraction of the run time there).
"""

import os
import unittest

from shoal_harness import key_slot, slot_owners, wait_settled
from test_leave import (BIG, SETTLE_TIMEOUT, LeaveClusterTest, all_logs, by_port, follow,
                        key_owned_by, leave, write_small)


class LargeValueLeaveTest(LeaveClusterTest):
    def test_leave_hands_over_values_larger_than_a_frame(self):
        leaver = self.nodes[1]
        owners = slot_owners(self.nodes[0])
        big_key = key_owned_by(owners, leaver, "big:str:")
        hash_key = key_owned_by(owners, leaver, "big:hash:")
        big = os.urandom(BIG)
        fields = {f"f{i}".encode(): big[i << 20:(i + 1) << 20] for i in range(70)}
        with leaver.client(socket_timeout=120) as c:
            self.assertTrue(c.set(big_key, big))
            # A few fields per HSET (each under the frame but the hash far above it).
            items = list(fields.items())
            for i in range(0, len(items), 10):
                c.hset(hash_key, mapping=dict(items[i:i + 10]))
        small = write_small(self.nodes, owners, 3000)
        leave(leaver)
        rc = leaver.wait_exit(timeout=180)
        log = leaver.log()
        self.assertEqual(rc, 0, f"leaver's exit status\n{all_logs(self.nodes)}")
        self.assertIn("buckets handed over", log)
        self.assertNotIn("frame limit", log)
        rest = [n for n in self.nodes if n is not leaver]
        try:
            wait_settled(rest, timeout=SETTLE_TIMEOUT, total_keys=len(small) + 2)
        except AssertionError as e:
            self.fail(f"{e}\n{all_logs(self.nodes)}")
        got = follow(rest, "GET", big_key)
        self.assertEqual(len(got), len(big))
        self.assertTrue(got == big, "the 70 MiB string differs")
        got_hash = follow(rest, "HGETALL", hash_key)
        got_hash = dict(zip(got_hash[::2], got_hash[1::2])) if isinstance(got_hash, list) \
            else got_hash
        self.assertEqual(len(got_hash), len(fields))
        self.assertTrue(got_hash == fields, "the 70 MiB hash differs")
        ports = by_port(rest)
        owners = slot_owners(rest[0])
        wrong = []
        for k in small:
            with ports[owners[key_slot(k)]].client() as c:
                v = c.get(k)
            if v != ("v:" + k[2:]).encode():
                wrong.append((k, v))
        self.assertEqual(wrong, [], f"{len(wrong)} small keys lost or wrong")


if __name__ == "__main__":
    unittest.main()
