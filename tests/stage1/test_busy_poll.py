# test_busy_poll.py - the spin-before-sleep (--busy-poll-us) as a user sees
# it: INFO reports the budget; a server that has just been busy goes back to
# sleeping once traffic stops, so an idle server costs no CPU; and a budget of
# 0 turns spinning off. CPU time is read from /proc/<pid>/stat.
import os
import time

import kvtest

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        # Fields after the command name, which may hold spaces, start after ")".
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


class BusyPoll(kvtest.ServerTestCase):

    def burst_then_idle_cpu(self, args, idle_seconds=1.0):
        srv = self.start_server(args)
        c = self.connect(srv)
        for i in range(2000):
            c.send_command("SET", "bp:%d" % i, "v")
            self.assertEqual(c.read_reply(), "OK")
        before = cpu_seconds(srv.pid)
        time.sleep(idle_seconds)  # the quantity measured is CPU used over this interval
        used = cpu_seconds(srv.pid) - before
        self.assertEqual(c.command("PING"), "PONG")
        return srv, c, used

    def test_info_reports_budget(self):
        srv = self.start_server(["--busy-poll-us", "250"])
        info = kvtest.parse_info(self.connect(srv).command("INFO"))
        self.assertEqual(info["busy_poll_us"], "250")

    def test_idle_server_stops_spinning(self):
        # With the default budget: a spinning loop would burn the whole second.
        _, _, used = self.burst_then_idle_cpu([])
        self.assertLess(used, 0.2, "an idle server used %.2f s of CPU in 1 s" % used)

    def test_large_budget_still_stops(self):
        # 10 ms, the largest budget allowed, still ends: the spin is bounded by
        # the last activity, not kept alive by its own polling.
        _, _, used = self.burst_then_idle_cpu(["--busy-poll-us", "10000"])
        self.assertLess(used, 0.2, "an idle server used %.2f s of CPU in 1 s" % used)

    def test_zero_turns_it_off(self):
        srv, c, used = self.burst_then_idle_cpu(["--busy-poll-us", "0"])
        self.assertLess(used, 0.2)
        self.assertEqual(kvtest.parse_info(c.command("INFO"))["busy_poll_us"], "0")

    def test_out_of_range_refused(self):
        for bad in ("-1", "10001", "lots"):
            with self.subTest(value=bad):
                p = kvtest.run_binary(["--busy-poll-us", bad])
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("busy-poll-us", p.stderr)


if __name__ == "__main__":
    kvtest.main()
