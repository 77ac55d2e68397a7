!> closure_mpi: the closure call in an MPI model whose columns are split across ranks.
!>
!>   mpiexec -n P closure_mpi IMAGE NCOL STEPS OUT
!>
!> The same problem as closure_openmp.f90 (the toy model of closure_columns.f90, NCOL columns,
!> STEPS steps), with the columns split into P contiguous blocks, one per rank:
!> * the model image is read once, by rank 0 (sb_load checks it), and broadcast; every rank
!>   opens its own copy with sb_open, which checks the alignment and the checksum again. (Every
!>   rank calling sb_load on the same file works too; the broadcast spares the file system on
!>   many ranks.)
!> * every rank advances its block with one sb_closure_batch call per step (one random stream
!>   per column, in the order of the block);
!> * the streams are keyed by the GLOBAL column index, so a column's trajectory does not depend
!>   on the number of ranks;
!> * at the end the blocks are gathered to rank 0, which writes the state file OUT.
!> OUT is the same file, byte for byte, for any P, and the same file closure_openmp writes for
!> the same NCOL and STEPS (tests/examples_parallel.rs checks both).
!>
!> Built with the MPI compiler wrapper (mpifort). The mpi_f08 module's choice buffers are
!> assumed-type, assumed-rank dummies (a Fortran 2018 feature); passing ordinary arrays to them
!> is valid Fortran 2008 code, so this file compiles with -std=f2008 like the other examples.
program closure_mpi
   use, intrinsic :: iso_c_binding
   use, intrinsic :: iso_fortran_env, only: error_unit
   use mpi_f08
   use sbridge
   use closure_columns
   implicit none

   type(sbridge_model) :: model
   type(sb_model_info_t) :: info
   type(sb_workspace_lens_t) :: lens
   type(sb_closure_config_t) :: cfg
   character(len=4096) :: image_path, arg, out_path
   integer(c_size_t) :: z_coords(nk)
   integer(c_int64_t) :: image_size(2)
   real(c_double), allocatable :: z(:, :), psi(:, :), work(:), z_all(:, :), psi_all(:, :)
   type(sb_rng_t), allocatable :: rngs(:), rngs_all(:)
   integer, allocatable :: counts(:), displs(:), words(:), offsets(:)
   integer(c_int) :: status
   integer :: rank, nranks, ncol, steps, g0, nloc, c, n, r, ios, words_per_rng
   logical :: ok

   call MPI_Init()
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)
   call MPI_Comm_size(MPI_COMM_WORLD, nranks)

   if (command_argument_count() /= 4) then
      if (rank == 0) write (error_unit, '(a)') 'usage: closure_mpi IMAGE NCOL STEPS OUT'
      call MPI_Abort(MPI_COMM_WORLD, 2)
   end if
   call get_command_argument(1, image_path)
   call get_command_argument(2, arg)
   read (arg, *, iostat=ios) ncol
   if (ios /= 0 .or. ncol < nranks) then
      if (rank == 0) write (error_unit, '(a)') 'closure_mpi: NCOL must be an integer >= ranks'
      call MPI_Abort(MPI_COMM_WORLD, 2)
   end if
   call get_command_argument(3, arg)
   read (arg, *, iostat=ios) steps
   if (ios /= 0 .or. steps < 0) then
      if (rank == 0) write (error_unit, '(a)') 'closure_mpi: STEPS must be an integer >= 0'
      call MPI_Abort(MPI_COMM_WORLD, 2)
   end if
   call get_command_argument(4, out_path)

   ! The model: rank 0 reads the file; every rank gets the bytes and opens them.
   status = SB_OK
   image_size = 0
   if (rank == 0) then
      status = sb_load(model, trim(image_path))
      if (status == SB_OK) then
         image_size(1) = int(model%nbytes, c_int64_t)
         image_size(2) = size(model%words, kind=c_int64_t)
      end if
   end if
   call MPI_Bcast(status, 1, MPI_INTEGER, 0, MPI_COMM_WORLD)
   if (status /= SB_OK) then
      if (rank == 0) write (error_unit, '(a, a, a, a)') 'closure_mpi: loading ', &
         trim(image_path), ': ', sb_message(status)
      call MPI_Abort(MPI_COMM_WORLD, 1)
   end if
   call MPI_Bcast(image_size, 2, MPI_INTEGER8, 0, MPI_COMM_WORLD)
   if (rank /= 0) then
      ! sbridge_model keeps the image in its words (see ffi/sbridge.f90); sb_open opens them.
      allocate (model%words(image_size(2)))
      model%nbytes = int(image_size(1), c_size_t)
   end if
   call MPI_Bcast(model%words, int(image_size(2)), MPI_INTEGER8, 0, MPI_COMM_WORLD)
   if (rank /= 0) call sb_check(sb_open(model), 'opening the broadcast image')
   call sb_check(sb_info(model, info), 'model info')
   call sb_check(sb_workspace(model, lens), 'workspace lengths')
   if (info%float_size /= 8 .or. info%d /= 2 * nk) then
      if (rank == 0) write (error_unit, '(a, i0)') &
         'closure_mpi: expected a double model of d = ', 2 * nk
      call MPI_Abort(MPI_COMM_WORLD, 1)
   end if
   cfg = closure_config()
   z_coords = z_coordinates()

   ! This rank's block: global columns g0 .. g0 + nloc - 1 (0-based), the first mod(ncol, nranks)
   ! ranks one column more.
   allocate (counts(0:nranks - 1), displs(0:nranks - 1))
   counts = ncol / nranks
   counts(0:modulo(ncol, nranks) - 1) = counts(0:modulo(ncol, nranks) - 1) + 1
   displs(0) = 0
   do r = 1, nranks - 1
      displs(r) = displs(r - 1) + counts(r - 1)
   end do
   g0 = displs(rank)
   nloc = counts(rank)

   allocate (z(nk, nloc), psi(nk, nloc), rngs(nloc), work(lens%closure))
   call initial_state(g0, z, psi)
   do c = 1, nloc
      call sb_check(sb_rng_seed(seed, int(g0 + c - 1, c_int64_t), rngs(c)), 'seeding')
   end do

   ! The time loop: the whole block in one batched closure call per step.
   do n = 1, steps
      status = sb_closure_batch(model, cfg, z_coords, z, psi, rngs, work)
      if (status /= SB_OK) then
         write (error_unit, '(a, i0, a, i0, a, a)') 'closure_mpi: rank ', rank, ' step ', n, &
            ': ', sb_message(status)
         call MPI_Abort(MPI_COMM_WORLD, 1)
      end if
      do c = 1, nloc
         call euler_step(z(:, c), psi(:, c))
      end do
      ! (A real model exchanges halos here; these columns are independent.)
   end do

   ! Gather the blocks to rank 0 in global column order: nk doubles of z and of psi per column,
   ! and the random streams as int64 words (an sb_rng_t is 6 of them).
   words_per_rng = storage_size(rngs(1)) / 64
   if (rank == 0) then
      allocate (z_all(nk, ncol), psi_all(nk, ncol), rngs_all(ncol))
   else
      allocate (z_all(1, 1), psi_all(1, 1), rngs_all(1))
   end if
   allocate (words(0:nranks - 1), offsets(0:nranks - 1))
   words = nk * counts
   offsets = nk * displs
   call MPI_Gatherv(z, nk * nloc, MPI_DOUBLE_PRECISION, z_all, words, offsets, &
                    MPI_DOUBLE_PRECISION, 0, MPI_COMM_WORLD)
   call MPI_Gatherv(psi, nk * nloc, MPI_DOUBLE_PRECISION, psi_all, words, offsets, &
                    MPI_DOUBLE_PRECISION, 0, MPI_COMM_WORLD)
   words = words_per_rng * counts
   offsets = words_per_rng * displs
   call MPI_Gatherv(rngs, words_per_rng * nloc, MPI_INTEGER8, rngs_all, words, offsets, &
                    MPI_INTEGER8, 0, MPI_COMM_WORLD)
   ok = .true.
   if (rank == 0) then
      ok = write_state(trim(out_path), model, steps, z_all, psi_all, rngs_all)
      if (ok) write (*, '(a, i0, a, i0, a, i0, a, f0.3, a, f0.3)') 'closure_mpi: ', ncol, &
         ' columns, ', steps, ' steps on ', nranks, ' ranks; z mean ', sum(z_all) / size(z_all), &
         ', psi mean ', sum(psi_all) / size(psi_all)
   end if
   if (.not. ok) call MPI_Abort(MPI_COMM_WORLD, 1)
   deallocate (z, psi, rngs, work, z_all, psi_all, rngs_all, counts, displs, words, offsets)
   call sb_free(model)
   call MPI_Finalize()
end program closure_mpi
