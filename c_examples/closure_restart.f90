!> closure_restart_f: checkpoint and restart of a Fortran model that calls the closure.
!>
!>   closure_restart_f IMAGE NCOL STEPS OUT               start from the initial state
!>   closure_restart_f IMAGE NCOL STEPS OUT CHECKPOINT    continue from a checkpoint
!>
!> The Fortran twin of closure_restart.c: NCOL columns of the toy model of closure_columns.f90
!> run to step STEPS, one sb_closure_batch call per step; OUT receives the state file. That file
!> is also the checkpoint: a new process given it as CHECKPOINT continues from the step it was
!> written at, and its OUT is byte for byte the OUT of one uninterrupted run. The files are the
!> C program's, byte for byte, so either language can continue the other's checkpoint.
!>
!> What a restart must save, and what it must not:
!> * every column's sb_rng_t, all of it (6 int64 words: the xoshiro256++ state and the cached
!>   normal deviate with its flag), written as it is: a stream reseeded at the restart would
!>   draw different noise;
!> * every column's psi: with SB_INIT_WARM the next closure call starts from it;
!> * the host model's own state (here z) and the step counter, as any restart does;
!> * not the model: the library keeps no state between calls, so the model is reloaded from its
!>   image file with sb_load; the checkpoint records the image checksum, and a restart with
!>   another image is refused.
program closure_restart_f
   use, intrinsic :: iso_c_binding
   use, intrinsic :: iso_fortran_env, only: error_unit
   use sbridge
   use closure_columns
   implicit none

   type(sbridge_model) :: model
   type(sb_model_info_t) :: info
   type(sb_workspace_lens_t) :: lens
   type(sb_closure_config_t) :: cfg
   character(len=4096) :: image_path, arg, out_path, checkpoint_path
   integer(c_size_t) :: z_coords(nk), failed
   real(c_double), allocatable :: z(:, :), psi(:, :), work(:)
   type(sb_rng_t), allocatable :: rngs(:)
   integer(c_int) :: status
   integer :: ncol, steps, step, first, c, ios

   if (command_argument_count() /= 4 .and. command_argument_count() /= 5) then
      write (error_unit, '(a)') 'usage: closure_restart_f IMAGE NCOL STEPS OUT [CHECKPOINT]'
      error stop 2
   end if
   call get_command_argument(1, image_path)
   call get_command_argument(2, arg)
   read (arg, *, iostat=ios) ncol
   if (ios /= 0 .or. ncol < 1) error stop 'closure_restart_f: NCOL must be a positive integer'
   call get_command_argument(3, arg)
   read (arg, *, iostat=ios) steps
   if (ios /= 0 .or. steps < 0) error stop 'closure_restart_f: STEPS must be an integer >= 0'
   call get_command_argument(4, out_path)

   ! The model: reloaded from its image file at every start, restart or not.
   call sb_check(sb_load(model, trim(image_path)), 'loading '//trim(image_path))
   call sb_check(sb_info(model, info), 'model info')
   call sb_check(sb_workspace(model, lens), 'workspace lengths')
   if (info%float_size /= 8 .or. info%d /= 2 * nk) then
      write (error_unit, '(a, i0)') 'closure_restart_f: expected a double model of d = ', 2 * nk
      error stop 1
   end if
   allocate (work(lens%closure))
   cfg = closure_config()
   z_coords = z_coordinates()

   ! The state: from the checkpoint, or the initial state with freshly seeded streams.
   if (command_argument_count() == 5) then
      call get_command_argument(5, checkpoint_path)
      if (.not. read_state(trim(checkpoint_path), model, step, z, psi, rngs)) error stop 1
      if (size(z, 2) /= ncol .or. step > steps) then
         write (error_unit, '(a, i0, a, i0)') 'closure_restart_f: the checkpoint has ', &
            size(z, 2), ' columns at step ', step
         error stop 1
      end if
   else
      step = 0
      allocate (z(nk, ncol), psi(nk, ncol), rngs(ncol))
      call initial_state(0, z, psi)
      do c = 1, ncol
         call sb_check(sb_rng_seed(seed, int(c - 1, c_int64_t), rngs(c)), 'seeding')
      end do
   end if
   first = step

   do while (step < steps)
      status = sb_closure_batch(model, cfg, z_coords, z, psi, rngs, work, failed)
      if (status /= SB_OK) then
         write (error_unit, '(a, i0, a, i0, a, a)') 'closure_restart_f: column ', failed, &
            ' failed at step ', step + 1, ': ', sb_message(status)
         error stop 1
      end if
      do c = 1, ncol
         call euler_step(z(:, c), psi(:, c))
      end do
      if (any(.not. (abs(z) <= 1.0e3_c_double))) error stop 'closure_restart_f: blew up'
      step = step + 1
   end do

   if (.not. write_state(trim(out_path), model, steps, z, psi, rngs)) error stop 1
   write (*, '(a, i0, a, i0, a, i0, a)') 'closure_restart_f: ', ncol, ' columns, steps ', &
      first, '..', steps, trim(merge(' (restarted)', '            ', command_argument_count() == 5))
   deallocate (z, psi, rngs, work)
   call sb_free(model)
end program closure_restart_f
