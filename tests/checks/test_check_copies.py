# test_check_copies.py - the drift guard (scripts/check_copies.py) against
# small stage trees built in a temp dir: a clean tree passes with one summary
# line, and each kind of problem is reported, one line naming the files and
# what to do, with exit status 1.
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "check_copies.py")

S1, S2, S3, S4 = "stage1-single-node", "stage2-wal", "stage3-client", "stage4-replication"

LESSON2 = """\
# Stage 2: a lesson. Comment lines and blank lines are allowed.

server.c: the server learns to log
wal.c: the log itself
"""

LESSON3 = """\
# Stage 3: another lesson.
client/io.c: the client's connection
"""


class CheckCopies(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="check-copies-")
        self.addCleanup(shutil.rmtree, self.root)
        # Stage 1; stage 2 changes server.c and adds wal.c; stage 3 adds
        # client/io.c. Every other file is carried forward unchanged.
        self.write(S1, "server.c", "int serve(void);\n")
        self.write(S1, "conn.c", "int conn;\n")
        self.write(S1, "sub/util.h", "#define UTIL 1\n")
        for s in (S1, S2, S3):
            self.write(s, "CMakeLists.txt", "# a built stage\n")
        for s in (S2, S3):
            self.write(s, "conn.c", "int conn;\n")
            self.write(s, "sub/util.h", "#define UTIL 1\n")
            self.write(s, "server.c", "int serve(void);\nint log_writes(void);\n")
            self.write(s, "wal.c", "int wal;\n")
        self.write(S3, "client/io.c", "int io;\n")
        self.write(S2, "LESSON", LESSON2)
        self.write(S3, "LESSON", LESSON3)

    def write(self, stage, rel, text):
        path = os.path.join(self.root, stage, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def run_checker(self, root=None):
        p = subprocess.run([sys.executable, CHECKER, "--root", root or self.root],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, text=True)
        return p.returncode, p.stdout.splitlines(), p.stderr

    def assertProblems(self, *expected):
        """Fails unless the checker exits 1 and prints exactly one line per
        expected problem, each line containing every fragment given for it."""
        rc, lines, err = self.run_checker()
        self.assertEqual(rc, 1, "expected failure, got %d:\n%s" % (rc, "\n".join(lines)))
        self.assertEqual(err, "")
        self.assertEqual(lines[-1], "check-copies: %d problem(s); see above" % len(expected))
        problems = lines[:-1]
        self.assertEqual(len(problems), len(expected), "\n".join(problems))
        for fragments in expected:
            matching = [p for p in problems if all(f in p for f in fragments)]
            self.assertEqual(len(matching), 1, "no single line with %r in:\n%s" % (fragments, "\n".join(problems)))
        return problems

    def test_clean_tree_passes_with_one_summary_line(self):
        rc, lines, err = self.run_checker()
        self.assertEqual((rc, err), (0, ""), lines)
        self.assertEqual(lines, ["check-copies: ok: 2 stage(s) checked (stage2-wal against stage1-single-node; "
                                 "stage3-client against stage2-wal); 8 shared files identical, "
                                 "3 entries in LESSON files"])

    def test_edit_in_one_stage_is_reported_against_both_neighbours(self):
        # A fix made in stage 2's copy only: stage 2 now differs from stage 1,
        # and stage 3 from stage 2, and neither LESSON lists conn.c.
        self.write(S2, "conn.c", "int conn; /* fixed */\n")
        self.assertProblems(
            ("stage2-wal/conn.c differs from stage1-single-node/conn.c", "not listed in stage2-wal/LESSON",
             "fix the copy in every stage that carries it, or list it in LESSON with a reason"),
            ("stage3-client/conn.c differs from stage2-wal/conn.c", "not listed in stage3-client/LESSON",
             "fix the copy in every stage that carries it"))

    def test_fix_carried_to_every_stage_passes(self):
        for s in (S1, S2, S3):
            self.write(s, "sub/util.h", "#define UTIL 2\n")
        rc, lines, _ = self.run_checker()
        self.assertEqual(rc, 0, lines)

    def test_nested_shared_file_is_compared(self):
        self.write(S3, "sub/util.h", "#define UTIL 3\n")
        self.assertProblems(("stage3-client/sub/util.h differs from stage2-wal/sub/util.h",))

    def test_new_file_not_listed(self):
        self.write(S3, "client/new.c", "int n;\n")
        self.assertProblems(("stage3-client/client/new.c is new", "there is no stage2-wal/client/new.c",
                             "not listed in stage3-client/LESSON", "list it with a reason"))

    def test_removed_file_not_listed(self):
        os.remove(os.path.join(self.root, S3, "conn.c"))
        self.assertProblems(("stage3-client/conn.c is gone", "stage2-wal/conn.c exists",
                             "not listed in stage3-client/LESSON", "list the removal with a reason"))

    def test_removed_file_listed_passes(self):
        os.remove(os.path.join(self.root, S3, "conn.c"))
        self.write(S3, "LESSON", LESSON3 + "conn.c: merged into server.c\n")
        rc, lines, _ = self.run_checker()
        self.assertEqual(rc, 0, lines)

    def test_stale_entry_for_identical_file(self):
        self.write(S3, "LESSON", LESSON3 + "\nconn.c: once changed, since reverted\n")
        self.assertProblems(("stage3-client/LESSON:4:", "stage3-client/conn.c is byte-identical to stage2-wal/conn.c",
                             "remove the stale entry"))

    def test_entry_for_file_in_neither_stage(self):
        self.write(S3, "LESSON", LESSON3 + "client/gone.c: a typo\n")
        self.assertProblems(("stage3-client/LESSON:3:", "neither stage2-wal/client/gone.c nor "
                             "stage3-client/client/gone.c exists", "fix the path or remove the entry"))

    def test_entry_without_reason(self):
        self.write(S3, "LESSON", LESSON3 + "client/io.h\nwal.c:   \n")
        self.assertProblems(("stage3-client/LESSON:3:", "'client/io.h' has no reason", "path: one-line reason"),
                            ("stage3-client/LESSON:4:", "'wal.c:' has no reason"))

    def test_missing_lesson(self):
        os.remove(os.path.join(self.root, S3, "LESSON"))
        self.assertProblems(("stage3-client/LESSON is missing", "against stage2-wal"),
                            ("stage3-client/client/io.c is new", "not listed in stage3-client/LESSON"))

    def test_duplicate_entry(self):
        self.write(S2, "LESSON", LESSON2 + "wal.c: said twice\n")
        self.assertProblems(("stage2-wal/LESSON:5:", "wal.c is already listed on line 4"))

    def test_directory_entry_is_refused(self):
        self.write(S3, "LESSON", "client: the whole library\n")
        self.assertProblems(("stage3-client/LESSON:1:", "client is a directory", "list its files one by one"),
                            ("stage3-client/client/io.c is new", "not listed"))

    def test_path_outside_the_stage_is_refused(self):
        self.write(S3, "LESSON", LESSON3 + "../stage2-wal/wal.c: not ours\n")
        self.assertProblems(("stage3-client/LESSON:3:", "is not a path inside the stage"))

    def test_lesson_is_not_compared_and_cannot_be_listed(self):
        # The LESSON files differ between stages 2 and 3 (they always do)
        # without being listed; listing one is an error.
        self.write(S3, "LESSON", LESSON3 + "LESSON: the manifest\n")
        self.assertProblems(("stage3-client/LESSON:3:", "LESSON itself is never compared"))

    def test_later_stage_without_its_predecessor(self):
        self.write("stage5-raft", "LESSON", "")
        self.assertProblems(("stage5-raft exists but stage4-replication", "does not"))

    def test_next_stage_is_checked_once_it_exists(self):
        shutil.copytree(os.path.join(self.root, S3), os.path.join(self.root, S4))
        os.remove(os.path.join(self.root, S4, "LESSON"))
        self.assertProblems(("stage4-replication/LESSON is missing", "against stage3-client"))

    def test_stage_being_started_is_not_checked_yet(self):
        # A directory with neither a build file nor a LESSON (the Raft core
        # growing in stage5-raft/raft/ before the stage exists) is work in
        # progress, not a copy: it is checked once it has either.
        shutil.copytree(os.path.join(self.root, S3), os.path.join(self.root, S4))
        self.write(S4, "LESSON", "# nothing changed yet\n")
        self.write("stage5-raft", "raft/raft.c", "int raft;\n")
        rc, lines, err = self.run_checker()
        self.assertEqual((rc, err), (0, ""), "\n".join(lines))
        self.assertIn("3 stage(s) checked", lines[-1])
        self.write("stage5-raft", "CMakeLists.txt", "# now a stage\n")
        rc, lines, err = self.run_checker()
        self.assertEqual(rc, 1)
        self.assertTrue(any("stage5-raft/LESSON is missing" in l for l in lines), "\n".join(lines))

    def test_root_without_stages_is_a_usage_error(self):
        empty = tempfile.mkdtemp(prefix="check-copies-empty-")
        self.addCleanup(shutil.rmtree, empty)
        rc, lines, err = self.run_checker(empty)
        self.assertEqual((rc, lines), (2, []))
        self.assertIn("has no stage1-single-node directory", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
