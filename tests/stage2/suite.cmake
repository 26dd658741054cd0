# suite.cmake - the stage-2 durability suite as a function, so later stages
# re-run it against their own binaries (see tests/stage1/suite.cmake).
set(KV_STAGE2_SUITE_DIR ${CMAKE_CURRENT_LIST_DIR})
set(KV_STAGE2_SUITE_SCRIPTS crash recovery_files compaction group_commit)

# kv_stage2_suite(<name prefix> <labels> <server target> [extra server args...])
function(kv_stage2_suite prefix labels target)
  foreach(script ${KV_STAGE2_SUITE_SCRIPTS})
    kv_py_test(${prefix}.${script} "${labels}" ${KV_STAGE2_SUITE_DIR}/test_${script}.py ${target} --data-dir {tmp}/data ${ARGN})
  endforeach()
endfunction()
