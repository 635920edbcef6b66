"""The fault suite: the CLI and library driven through what a fault tester does (issue 18).

Each case of "Never silently wrong" and where its tests are:

1. a missing CMVN file: ``test_real_system.test_missing_cmvn_is_an_error_unless_asked_for``
2. resumes that change the job (``-j``, inputs, settings): ``test_features`` (section 1)
3. errors in worker processes, nothing half-written: ``test_features`` (section 2)
4. corrupt files name themselves: ``test_real_system.test_corrupt_files_name_themselves``
5. experiment folders as records: ``test_real_system.test_experiment_folders_are_records``
6. folders that reproduce themselves (configs accepted back, provenance, logs, relocatable
   data directories): ``test_config``, ``test_cli``,
   ``test_real_system.test_a_moved_or_copied_data_directory_reads_its_own_features``
7. bad values (YAML like the command line, OS errors, member indices, recipe stages):
   ``test_config``, ``test_cli``, ``test_real_system.test_bad_member_index_is_one_line``
8. every bad file reported at once, skips per reason, logs above progress bars, no torch
   for ``--help``: ``test_features`` (section 3), ``test_cli``
"""
