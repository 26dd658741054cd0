# test_checker.py - the labs checker (scripts/lab.py) catches what it is
# for: a marker that removes nothing, a marker naming no listed task, a task
# no test grades, grading tests that pass on the stub; and generating a lab
# never overwrites a learner's work. Each case doctors a copy of the
# workbook (common/, stage 1, tests/) and expects the checker to fail,
# naming the problem; the undoctored copy is the control.
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = "/usr/bin/python3"


class Checker(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kv-labcheck-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.root = os.path.join(self.tmp, "kv")
        os.makedirs(self.root)
        shutil.copy(os.path.join(ROOT, "CMakeLists.txt"), self.root)
        for d in ("common", "stage1-single-node", "tests", "scripts"):
            shutil.copytree(os.path.join(ROOT, d), os.path.join(self.root, d),
                            ignore=shutil.ignore_patterns("__pycache__"))

    def lab(self, *args):
        p = subprocess.run([PYTHON, os.path.join(self.root, "scripts", "lab.py")] + list(args) + ["--root", self.root],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=500)
        return p.returncode, p.stdout

    def edit(self, rel, old, new):
        path = os.path.join(self.root, rel)
        with open(path) as f:
            text = f.read()
        self.assertEqual(text.count(old), 1, "%r in %s" % (old, rel))
        with open(path, "w") as f:
            f.write(text.replace(old, new))

    def assert_fails(self, needle, *args):
        rc, out = self.lab(*args)
        self.assertEqual(rc, 1, out)
        self.assertIn(needle, out)

    DBSIZE = "    reply_int(&c->out, (long long)kv_store_count(&c->srv->store));\n"

    def test_control_passes_lint(self):
        rc, out = self.lab("lint")
        self.assertEqual(rc, 0, out)

    def test_marker_that_removes_nothing(self):
        self.edit("stage1-single-node/commands.c", self.DBSIZE,
                  "    /* LAB del-exists: count the keys */\n    /* comments are not code */\n    /* END LAB */\n"
                  + self.DBSIZE)
        self.assert_fails("removes nothing", "lint")
        self.assert_fails("removes nothing", "check", "1", "--build-root", os.path.join(self.tmp, "b"))

    def test_marker_naming_an_unlisted_task(self):
        self.edit("stage1-single-node/commands.c", self.DBSIZE,
                  "    /* LAB dbsize: count the keys */\n" + self.DBSIZE + "    /* END LAB */\n")
        self.assert_fails("marker names task dbsize, which no stage's LAB lists", "lint")

    def test_unclosed_and_malformed_markers(self):
        self.edit("stage1-single-node/commands.c", self.DBSIZE, "    /* LAB del-exists: x */\n" + self.DBSIZE)
        self.assert_fails("never closed", "lint")
        self.edit("stage1-single-node/commands.c", "    /* LAB del-exists: x */\n", "    /* LAB del-exists x */\n")
        self.assert_fails("malformed LAB marker", "lint")

    def test_task_without_grading_test(self):
        self.edit("stage1-single-node/LAB", "  tests stage1\\.shutdown\n", "")
        self.assert_fails("task graceful-shutdown has no grading test", "lint")

    def test_grading_test_that_matches_nothing(self):
        self.edit("stage1-single-node/LAB", "  tests stage1\\.shutdown\n", "  tests stage1\\.shutdwn\n")
        self.assert_fails("grading test 'stage1\\\\.shutdwn' matches no test",
                          "check", "1", "--task", "graceful-shutdown", "--build-root", os.path.join(self.tmp, "b"))

    def test_grading_test_that_passes_on_the_stub(self):
        # common.test_buf never sends a DEL: it cannot tell the stub from the solution.
        self.edit("stage1-single-node/LAB", "  tests stage1\\.multibulk stage1\\.inline", "  tests common\\.test_buf")
        self.assert_fails("task del-exists: common.test_buf passes on the stub",
                          "check", "1", "--task", "del-exists", "--build-root", os.path.join(self.tmp, "b"))

    def test_generate_never_overwrites(self):
        rc, out = self.lab("generate", "1")
        self.assertEqual(rc, 0, out)
        mine = os.path.join(self.root, "labs", "stage1-single-node", "commands.c")
        with open(mine, "a") as f:
            f.write("/* my work */\n")
        self.assert_fails("nothing was overwritten", "generate", "1")
        with open(mine) as f:
            self.assertIn("/* my work */", f.read())
        rc, out = self.lab("generate", "1", "--force")  # make lab-reset-stage1
        self.assertEqual(rc, 0, out)
        with open(mine) as f:
            self.assertNotIn("/* my work */", f.read())
        old = os.path.join(self.root, "labs", ".old")
        kept = [os.path.join(old, d, "commands.c") for d in os.listdir(old)]
        self.assertEqual(len(kept), 1, kept)
        with open(kept[0]) as f:
            self.assertIn("/* my work */", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
