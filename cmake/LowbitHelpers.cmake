# SPDX-License-Identifier: MIT
# Helpers that make a room "one folder": sources are found by glob, tests beside them are registered.
include_guard(GLOBAL)

function(lowbit_warnings)
  add_compile_options($<$<COMPILE_LANGUAGE:C,CXX>:-Wall> $<$<COMPILE_LANGUAGE:C,CXX>:-Wextra>
                      $<$<COMPILE_LANGUAGE:C,CXX>:-Wshadow> $<$<COMPILE_LANGUAGE:C,CXX>:-Wno-unused-parameter>)
  if(LOWBIT_WERROR)
    add_compile_options($<$<COMPILE_LANGUAGE:C,CXX>:-Werror>)
  endif()
endfunction()

# lowbit_room(NAME DEPS dep...) — builds lowbit_<NAME> from every .cpp under the folder except *_test.cpp
# and *_gputest.cpp; CUDA .cu files are added only when CUDA is enabled. Tests: every *_test.cpp goes into
# lowbit_<NAME>_tests (label unit), every *_gputest.cpp into lowbit_<NAME>_gputests (label gpu).
# Globbing is deliberate: adding a scheme/method/architecture is "one folder + one table row", with no
# CMake edit (CONFIGURE_DEPENDS re-globs on build).
function(lowbit_room NAME)
  cmake_parse_arguments(R "" "" "DEPS;TEST_DEPS;EXCLUDE" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  file(GLOB_RECURSE tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cpp)
  file(GLOB_RECURSE gputests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_gputest.cpp)
  list(REMOVE_ITEM srcs ${tests} ${gputests} "")
  foreach(ex ${R_EXCLUDE})
    list(REMOVE_ITEM srcs ${CMAKE_CURRENT_SOURCE_DIR}/${ex})
  endforeach()
  set(cu "")
  if(LOWBIT_HAVE_CUDA)
    file(GLOB_RECURSE cu CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cu)
    list(APPEND srcs ${cu})
  endif()
  if(srcs)
    add_library(lowbit_${NAME} STATIC ${srcs})
    set(scope PUBLIC)
  else()
    add_library(lowbit_${NAME} INTERFACE) # a room with headers only (so far)
    set(scope INTERFACE)
  endif()
  target_include_directories(lowbit_${NAME} ${scope} ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(lowbit_${NAME} ${scope} ${R_DEPS})
  if(cu)
    # Rooms with CUDA code only, and PRIVATE: their .cu and *_stub.cpp files see the define and the CUDA include
    # path; every other room compiles exactly as in a CPU-only build (no CUDA header can leak upward, and ccache
    # reuses the CPU build's objects).
    target_compile_definitions(lowbit_${NAME} PRIVATE LOWBIT_HAVE_CUDA=1)
    target_link_libraries(lowbit_${NAME} PRIVATE CUDA::cudart)
  endif()
  if(LOWBIT_TESTS AND tests)
    lowbit_test(lowbit_${NAME}_tests SOURCES ${tests} DEPS lowbit_${NAME} ${R_TEST_DEPS} LABELS unit)
  endif()
  if(LOWBIT_TESTS AND gputests)
    lowbit_test(lowbit_${NAME}_gputests SOURCES ${gputests} DEPS lowbit_${NAME} ${R_TEST_DEPS} LABELS gpu)
  endif()
endfunction()

# lowbit_test(TARGET SOURCES ... DEPS ... LABELS ...) — a GoogleTest executable, each TEST a ctest entry.
function(lowbit_test TARGET)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  find_package(GTest REQUIRED)
  include(GoogleTest)
  add_executable(${TARGET} ${T_SOURCES})
  target_link_libraries(${TARGET} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${TARGET} PRIVATE LOWBIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                               LOWBIT_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${TARGET} PROPERTIES LABELS "${T_LABELS}" DISCOVERY_TIMEOUT 60
                       WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
endfunction()
