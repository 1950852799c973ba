# lct_module(NAME [DEPS ...]): a static library lct_<NAME> from src/<NAME>/*.cpp (and cpu/*.cpp);
# header-only modules become INTERFACE libraries. Includes are rooted at src/.
function(lct_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp ${CMAKE_CURRENT_SOURCE_DIR}/cpu/*.cpp)
  if(srcs)
    add_library(lct_${name} STATIC ${srcs})
    target_include_directories(lct_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(lct_${name} PUBLIC ${M_DEPS})
  else()
    add_library(lct_${name} INTERFACE)
    target_include_directories(lct_${name} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(lct_${name} INTERFACE ${M_DEPS})
  endif()
endfunction()

# lct_test_properties(TEST TIMEOUT LABELS...): what CTest makes of a GoogleTest binary (lct_test).
# The test mains (tests/support/test_outcome.h) exit 1 when any case failed and 77 only when every
# case was skipped: SKIP_RETURN_CODE 77 then reports "Skipped", and a binary with one failed and one
# skipped case fails (tests/support/ctest_semantics proves both with this very function).
function(lct_test_properties test_name timeout)
  set_tests_properties(${test_name} PROPERTIES
    TIMEOUT ${timeout}
    LABELS "${ARGN}"
    SKIP_RETURN_CODE 77
    ENVIRONMENT "OMP_NUM_THREADS=1;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;LCT_SOURCE_DIR=${PROJECT_SOURCE_DIR};LCT_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()

# lct_test(NAME name SOURCES ... LIBS ... [NP n] [NOMPI] [LABELS ...] [TIMEOUT s] [ARGS ...])
# A GoogleTest executable registered with CTest; NP > 0 runs it under mpirun with NP ranks.
# NOMPI: a plain main without MPI_Init, for tests that launch mpirun themselves.
# CTest reports it failed when any case fails, skipped only when every case skipped (GTEST_SKIP).
function(lct_test)
  cmake_parse_arguments(T "NOMPI" "NAME;NP;TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  # While several engineers work in one tree, a test whose sources are not written yet can be
  # skipped with -DLCT_ALLOW_MISSING_TESTS=ON; by default a missing source is an error.
  foreach(src ${T_SOURCES})
    if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${src} AND NOT EXISTS ${src})
      if(LCT_ALLOW_MISSING_TESTS)
        message(WARNING "test ${T_NAME}: ${src} not found, test skipped")
        return()
      endif()
      message(FATAL_ERROR "test ${T_NAME}: source ${src} not found")
    endif()
  endforeach()
  if(NOT TARGET ${T_NAME})
    add_executable(${T_NAME} ${T_SOURCES})
    if(T_NOMPI)
      target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} lct_testmain_plain GTest::gtest)
    else()
      target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} lct_testmain GTest::gtest)
    endif()
    set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  endif()
  set(test_name ${T_NAME})
  if(T_NP)
    set(test_name ${T_NAME}_np${T_NP})
    add_test(NAME ${test_name}
             COMMAND ${MPIEXEC_EXECUTABLE} ${LCT_MPIEXEC_FLAGS} -np ${T_NP} $<TARGET_FILE:${T_NAME}> ${T_ARGS}
             WORKING_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  else()
    add_test(NAME ${test_name} COMMAND $<TARGET_FILE:${T_NAME}> ${T_ARGS}
             WORKING_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  lct_test_properties(${test_name} ${T_TIMEOUT} ${T_LABELS})
endfunction()

# lct_script_test(NAME name COMMAND ... [LABELS ...] [TIMEOUT s]): a shell-level test (CLI, jobs).
function(lct_script_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;LABELS" ${ARGN})
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND} WORKING_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
    SKIP_RETURN_CODE 77
    ENVIRONMENT "OMP_NUM_THREADS=1;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;LCT_SOURCE_DIR=${PROJECT_SOURCE_DIR};LCT_BINARY_DIR=${PROJECT_BINARY_DIR};LCT_BIN=${PROJECT_BINARY_DIR}/bin")
endfunction()
